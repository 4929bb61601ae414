"""The only writers of a case. One function per change, keyword-only, by concern:

=================  ==========================================================================
``opening``        create_case, register_case, reject_case, resolve_on_spot, link_request,
                   reissue_tracking_token, attach_receipt
``assignment``     dispatch_case, sign_case, return_case, summon_units
``ownership``      escalate_case, delegate_case, transfer_case
``handling``       record_progress, reply_to_resident, submit_feedback
``closing``        verify_case, follow_up_case, reopen_case
``requests``       request_extension, request_pause, decide_extension, decide_pause,
                   resume_case
``supervision``    urge_case, flag_case, record_deadline_alerts
``resident``       rate_case, resident_urge_case, resident_reopen_case
``routes``         suggest_route, mark_unroutable
=================  ==========================================================================

Each: one transaction, the case row locked, the form's freshness checked, ``dispatch.policy``
asked, one hash-chained event appended (``_core``); messages through ``dispatch.notifications``
and after-commit work through ``dispatch.outbox`` in the same transaction.
"""

from dispatch.errors import DispatchError, StaleCaseError
from dispatch.services._core import lock_case
from dispatch.services.assignment import dispatch_case, return_case, sign_case, summon_units
from dispatch.services.closing import follow_up_case, reopen_case, verify_case
from dispatch.services.handling import record_progress, reply_to_resident, submit_feedback
from dispatch.services.opening import (
    attach_receipt,
    create_case,
    link_request,
    register_case,
    reissue_tracking_token,
    reject_case,
    resolve_on_spot,
)
from dispatch.services.ownership import delegate_case, escalate_case, transfer_case
from dispatch.services.requests import (
    decide_extension,
    decide_pause,
    request_extension,
    request_pause,
    resume_case,
)
from dispatch.services.resident import rate_case, resident_reopen_case, resident_urge_case
from dispatch.services.routes import mark_unroutable, suggest_route
from dispatch.services.supervision import flag_case, record_deadline_alerts, urge_case

__all__ = [
    "DispatchError",
    "StaleCaseError",
    "attach_receipt",
    "create_case",
    "decide_extension",
    "decide_pause",
    "delegate_case",
    "dispatch_case",
    "escalate_case",
    "flag_case",
    "follow_up_case",
    "link_request",
    "lock_case",
    "mark_unroutable",
    "rate_case",
    "record_deadline_alerts",
    "record_progress",
    "register_case",
    "reissue_tracking_token",
    "reject_case",
    "reopen_case",
    "reply_to_resident",
    "request_extension",
    "request_pause",
    "resident_reopen_case",
    "resident_urge_case",
    "resolve_on_spot",
    "resume_case",
    "return_case",
    "sign_case",
    "submit_feedback",
    "suggest_route",
    "summon_units",
    "transfer_case",
    "urge_case",
    "verify_case",
]
