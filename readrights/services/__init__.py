"""Writes about read rights: assign, invite, accept, revoke, resend, cancel; and ending a
customer's self-registration of a device (the owner's other way of ending access).

Every change runs in one transaction with its audit event and its email (the outbox row), so a
failure leaves nothing half-written. Device sets arrive as querysets and are inserted with one
``INSERT … SELECT`` each, so 100,000 devices cost one statement, not 100,000.
"""

from readrights import emails
from readrights.services.assign import AssignResult, assign_read_rights
from readrights.services.common import (
    InvitationInvalid,
    NotManageable,
    ReadRightsError,
    check_expiry,
    clean_emails,
    expiry_from_date,
)
from readrights.services.invitations import (
    Acceptance,
    accept_invitation,
    account_for_invitation,
    cancel_invitation,
    invitation_for_token,
    resend_invitation,
)
from readrights.services.registrations import end_registration
from readrights.services.revoke import revoke_read_rights, withdraw_invited_devices

__all__ = [
    "Acceptance",
    "AssignResult",
    "InvitationInvalid",
    "NotManageable",
    "ReadRightsError",
    "accept_invitation",
    "account_for_invitation",
    "assign_read_rights",
    "cancel_invitation",
    "check_expiry",
    "clean_emails",
    "emails",
    "end_registration",
    "expiry_from_date",
    "invitation_for_token",
    "resend_invitation",
    "revoke_read_rights",
    "withdraw_invited_devices",
]
