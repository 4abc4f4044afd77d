// THE PLUG-IN POINT FOR THE MEDIA SERVICE'S WEBRTC CODE.
//
// `connect(options)` is called once the page holds a participant pass from
// POST /api/v1/consultations/{id}/join (or /interpreter-join). It receives:
//   consultationId, participantId, role ("citizen" | "staff" | "interpreter"),
//   participantToken (present it to the media service), mediaPath (the media
//   service's URL prefix for this consultation), localStream (camera + microphone
//   already opened with the devices chosen in the device check; may be null),
//   addRemote(stream, role, label) to show a remote participant's tile,
//   setStatus(text) for the status line.
// It returns an object with `close()` (hang up) and, optionally, `stats()`.
//
// Until the media service lands, this module opens no connection: the page says
// honestly that the video connects here and that the pass was received.

export const MEDIA_AVAILABLE = false;

export async function connect(options) {
  options.setStatus(options.strings.joined_pending);
  return {
    async close() {},
    async stats() {
      return null;
    },
  };
}
