"""Tenancy: who may do what in which organization, and the only way to reach tenant data.

* ``permissions``: the role → permission matrix (SPEC §2), in one place;
* ``public``: the routes that need no session, declared in one place (everything else does);
* ``scope``: ``TenantScope``, the scoping layer every tenant-table query goes through;
* ``context``: resolves ``/orgs/{slug}`` to the signed-in user's membership inside the request's
  transaction, sets the tenant for row-level security and checks the route's permission.
"""
