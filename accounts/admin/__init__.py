"""Django admin for staff: users, organizations, Super User access requests.

Every grant and revoke of Super User — by approving a request, by the user actions, or by
editing a membership inline — goes through accounts.services, which checks the custody rule
(accounts.access.custody_refusal), audits it and emails the user, the organization's Super Users
and staff. Each route first calls accounts.access.check_custody_change: a grant needs a recent
sign-in, and nobody grants to their own account or into an organization they belong to. The
site itself (allauth's login, two-factor authentication for staff) is kamkeys.admin_site.
"""

from accounts.admin import access_requests, organizations, users

__all__ = ["access_requests", "organizations", "users"]
