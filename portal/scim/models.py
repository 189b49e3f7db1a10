"""The SCIM resources the portal publishes (scim2-models): trimmed to what it stores, so that what
``/Schemas`` announces is exactly what round-trips (an IdP, and scim2-tester, write every published
writable attribute and read it back).

* ``User`` is a membership: ``userName`` is the account's email; name, displayName, emails,
  externalId and ``active`` are kept per membership; the role travels in the Praesidia extension
  (absent means the default role, member).
* ``Agent`` (draft-abbey-scim-agent-extension-00) is one of the org's agents: ``name`` is its
  name, ``active`` whether it runs (paused otherwise), ``description`` its description; the IdP's
  displayName, agentType and externalId are kept beside it. An agent an IdP creates has no model
  yet ("unassigned"): someone in the org chooses it.
* ``Group`` is a team; ``members`` are Users. ``members.display`` is not published: Okta sends it
  (so it can't be read-only) and what is written must read back the same.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import Field
from scim2_models import (
    URN, AnyExtension, AuthenticationScheme, Bulk, CaseExact, ChangePassword, ComplexAttribute,
    Email, ETag, Extension, Filter, Mutability, Pagination, Patch, Reference, Required,
    Resource, ResourceType, ScimPolicy, ScimProvider, ServiceProviderConfig, Sort,
    Uniqueness,
)


class PortalName(ComplexAttribute):
    """The components of the user's name."""
    formatted: str | None = None
    family_name: str | None = None
    given_name: str | None = None


class PortalEmail(ComplexAttribute):
    """Email addresses for the user."""
    value: str | None = None
    type: Email.Type | None = None
    primary: bool | None = None


class User(Resource[AnyExtension]):
    """User Account"""
    __schema__ = URN("urn:ietf:params:scim:schemas:core:2.0:User")

    user_name: Annotated[str | None, Uniqueness.server, Required.true] = None
    """The member's email address, which identifies the account."""
    name: PortalName | None = None
    display_name: str | None = None
    active: bool | None = None
    emails: list[PortalEmail] | None = None


class PraesidiaUser(Extension):
    """Praesidia organization membership"""
    __schema__ = URN("urn:ietf:params:scim:schemas:extension:praesidia:2.0:User")

    role: str | None = Field(None, examples=["billing_admin", "compliance_officer"])  # and the org's custom roles, by name
    """The member's role in the organization (a built-in or custom role name); absent means the default role, member."""


class GroupMember(ComplexAttribute):
    value: Annotated[str | None, Mutability.immutable, CaseExact.true] = None
    ref: Annotated[Reference["User"] | None, Mutability.immutable] = Field(  # type: ignore[type-arg]
        None, serialization_alias="$ref", validation_alias="$ref")
    type: Annotated[str | None, Mutability.immutable] = Field(None, examples=["User"])
    # no 'display': Okta sends it on add (so it cannot be readOnly), scim2-tester reads back
    # exactly what it wrote (so the server cannot fill it in); unknown => ignored by POLICY.


class Group(Resource[Any]):
    """Group"""
    __schema__ = URN("urn:ietf:params:scim:schemas:core:2.0:Group")

    display_name: Annotated[str | None, Required.true] = None
    members: list[GroupMember] | None = None
    Members: ClassVar[type[ComplexAttribute]] = GroupMember


class Agent(Resource[Any]):
    """An AI agent of the organization (draft-abbey-scim-agent-extension-00)"""
    __schema__ = URN("urn:ietf:params:scim:schemas:core:2.0:Agent")

    name: Annotated[str | None, Required.true, Uniqueness.server] = None
    """The agent's name, unique in the organization."""
    display_name: str | None = None
    agent_type: str | None = None
    active: bool | None = None
    """Whether the agent runs its workflows (false: paused)."""
    description: str | None = None


USER_RT = ResourceType.from_resource(User[PraesidiaUser])
GROUP_RT = ResourceType.from_resource(Group)
AGENT_RT = ResourceType.from_resource(Agent)

CONFIG = ServiceProviderConfig(
    patch=Patch(supported=True),
    bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
    filter=Filter(supported=True, max_results=200),
    change_password=ChangePassword(supported=False),
    sort=Sort(supported=False),
    etag=ETag(supported=True),
    pagination=Pagination(index=True, cursor=False, default_page_size=100, max_page_size=200),
    authentication_schemes=[AuthenticationScheme(
        type=AuthenticationScheme.Type.oauthbearertoken, name="OAuth Bearer Token",
        description="An org SCIM token, sent as Authorization: Bearer", primary=True)],
)

# Real IdPs send attributes we do not keep (Okta: locale, nickName; Entra: title, addresses,
# the enterprise extension, ...). Drop them instead of answering 400; accept Entra's shapes.
POLICY = ScimPolicy(
    unknown=ScimPolicy.Unknown.ignore,
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)


PROVIDER = ScimProvider(models=[User, PraesidiaUser, Group, Agent], resource_types=[USER_RT, GROUP_RT, AGENT_RT], config=CONFIG, policy=POLICY)
# What a token the owner did not allow agents sees: people and teams only (discovery included).
PEOPLE_PROVIDER = ScimProvider(models=[User, PraesidiaUser, Group], resource_types=[USER_RT, GROUP_RT], config=CONFIG, policy=POLICY)
OrgUser = User[PraesidiaUser]  # a User as the org's SCIM service reads and writes it
