// RFC 6962/9162 Merkle tree hashing and consistency proof verification in the browser.
//
// Mirrors services/audit/merkle.py (verify_consistency) and follows RFC 9162 §2.1.4.2
// step by step. Hashes are SHA-256 from WebCrypto; tree sizes are handled as BigInt so
// that no 32-bit bitwise arithmetic can silently truncate a size. Anything malformed — a
// size that is not an integer in [0, 2^64), a hash that is not 32 bytes, a proof that is
// too long or too short — is refused with an InvalidProofError, never "repaired".

export const HASH_SIZE = 32;
const MAX_SIZE = 1n << 64n;

export class InvalidProofError extends Error {
  constructor(message) {
    super(message);
    this.name = "InvalidProofError";
  }
}

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

/** SHA-256(0x00 ‖ data): the hash of a leaf. */
export async function leafHash(data) {
  const input = new Uint8Array(data.length + 1);
  input[0] = 0;
  input.set(data, 1);
  return sha256(input);
}

/** SHA-256(0x01 ‖ left ‖ right): the hash of an inner node. */
export async function nodeHash(left, right) {
  const input = new Uint8Array(1 + left.length + right.length);
  input[0] = 1;
  input.set(left, 1);
  input.set(right, 1 + left.length);
  return sha256(input);
}

/** The root of the empty tree: SHA-256 of nothing. */
export async function emptyRoot() {
  return sha256(new Uint8Array(0));
}

export function equalBytes(a, b) {
  if (!(a instanceof Uint8Array) || !(b instanceof Uint8Array) || a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i += 1) diff |= a[i] ^ b[i];
  return diff === 0;
}

export function fromBase64(text) {
  if (typeof text !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw new InvalidProofError("not standard base64");
  }
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) out[i] = binary.charCodeAt(i);
  return out;
}

export function toBase64(bytes) {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function requireSize(value, what) {
  let size;
  if (typeof value === "bigint") size = value;
  else if (typeof value === "number" && Number.isSafeInteger(value)) size = BigInt(value);
  else throw new InvalidProofError(`${what} must be an integer in [0, 2**64): ${value}`);
  if (size < 0n || size >= MAX_SIZE) throw new InvalidProofError(`${what} must be an integer in [0, 2**64): ${value}`);
  return size;
}

function requireHash(value, what) {
  if (!(value instanceof Uint8Array) || value.length !== HASH_SIZE) {
    throw new InvalidProofError(`${what} must be ${HASH_SIZE} bytes`);
  }
  return value;
}

function requireProof(proof) {
  if (!Array.isArray(proof)) throw new InvalidProofError("a proof is a list of hashes");
  proof.forEach((entry, i) => requireHash(entry, `proof entry ${i}`));
  return proof;
}

/**
 * Resolve unless tree size2/root2 extends size1/root1 (RFC 9162 §2.1.4.2); otherwise throw
 * InvalidProofError. For size1 == size2 the proof must be empty and the roots equal; for
 * size1 == 0 the proof must be empty and root1 the empty tree's hash.
 */
export async function verifyConsistency(size1, size2, root1, root2, proof) {
  const first = requireSize(size1, "first tree size");
  const second = requireSize(size2, "second tree size");
  requireHash(root1, "first root hash");
  requireHash(root2, "second root hash");
  requireProof(proof);
  if (first > second) throw new InvalidProofError(`first tree size ${first} exceeds second tree size ${second}`);
  if (first === 0n && !equalBytes(root1, await emptyRoot())) {
    throw new InvalidProofError("the root hash of an empty tree must be SHA-256 of nothing");
  }
  if (first === 0n || first === second) {
    if (proof.length) throw new InvalidProofError("consistency proof must be empty for these sizes");
    if (first === second && !equalBytes(root1, root2)) {
      throw new InvalidProofError("trees of the same size have different root hashes");
    }
    return;
  }
  // Step 1: an empty proof is refused.
  if (!proof.length) throw new InvalidProofError("consistency proof is empty");
  // Step 2: if first is an exact power of two, prepend first_hash to the path.
  const path = [...proof];
  if ((first & (first - 1n)) === 0n) path.unshift(root1);
  // Step 3: fn = first - 1, sn = second - 1.
  let fn = first - 1n;
  let sn = second - 1n;
  // Step 4: while LSB(fn) is set, shift both right.
  while (fn & 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  // Step 5: fr = sr = the first value of the path.
  let fr = path[0];
  let sr = path[0];
  // Step 6: for each subsequent value c in the path …
  for (const c of path.slice(1)) {
    // a. if sn is 0, the proof is too long.
    if (sn === 0n) throw new InvalidProofError("consistency proof is too long");
    if (fn & 1n || fn === sn) {
      // b. HASH(0x01 ‖ c ‖ fr), HASH(0x01 ‖ c ‖ sr); then shift until LSB(fn) set or fn 0.
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      while (!(fn & 1n) && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      // c. otherwise sr = HASH(0x01 ‖ sr ‖ c).
      sr = await nodeHash(sr, c);
    }
    // d. shift both right by one.
    fn >>= 1n;
    sn >>= 1n;
  }
  // Step 7: sn must be 0 and both roots must match.
  if (sn !== 0n) throw new InvalidProofError("consistency proof is too short");
  if (!equalBytes(fr, root1)) throw new InvalidProofError("consistency proof does not lead to the first root hash");
  if (!equalBytes(sr, root2)) throw new InvalidProofError("consistency proof does not lead to the second root hash");
}

/**
 * The body of a C2SP tlog-checkpoint (origin, size, base64 root). The signature lines are
 * kept as text but not verified here: what the monitor checks is that every checkpoint it
 * is shown extends the last one it saw.
 */
export function parseCheckpoint(note) {
  if (typeof note !== "string") throw new InvalidProofError("a checkpoint is text");
  const lines = note.split("\n");
  if (lines.length < 4) throw new InvalidProofError("a checkpoint has an origin, a size and a root");
  const [origin, sizeText, rootText] = lines;
  if (!origin || !/^(0|[1-9][0-9]{0,19})$/.test(sizeText)) throw new InvalidProofError("malformed checkpoint");
  const size = BigInt(sizeText);
  if (size >= MAX_SIZE) throw new InvalidProofError("checkpoint size out of range");
  const root = fromBase64(rootText);
  requireHash(root, "checkpoint root hash");
  return { origin, size, root, rootBase64: rootText, note };
}
