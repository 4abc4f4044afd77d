"""Audit's outgoing mapper and HTTP refusals."""

from __future__ import annotations

import pytest

from services.audit.application import AuditTrail, DpoView, SignedCheckpoint, to_contract
from services.audit.export import ExportRangeError
from services.audit.proofs import BundleError
from services.audit.service import AuditService
from services.audit.signing import InconsistentLogError
from services.common.contracts import audit as contracts


def test_every_stored_event_is_mapped_or_internal_and_published_by_class() -> None:
    assert to_contract.unmapped(DpoView, SignedCheckpoint) == []
    trail = AuditTrail()
    trail.record_view("dora", "records", "start=0", "cid")
    trail.record_checkpoint("example.org/log", 3, "cm9vdA==", "note", "cid")
    published = [to_contract(trail.mapper.to_domain_event(n), n.id)
                 for n in trail.notification_log.select(start=1, limit=10)]
    assert [type(p) for p in published] == [contracts.AuditViewed,
                                            contracts.AuditCheckpointSigned]
    assert published[0].staff_id == "dora" and published[1].tree_size == 3


@pytest.mark.parametrize("error", [ExportRangeError("only the first 3 records are signed"),
                                   InconsistentLogError("root differs"),
                                   BundleError("the checkpoint's root hash is not this tree's")])
def test_log_refusals_are_conflicts(error: Exception) -> None:
    assert AuditService.refusals[type(error)] == 409
