"""The fixed list of connection kinds and, for each, the config keys it accepts.

A kind's config is an allow-list: a ``msgspec.Struct`` with ``forbid_unknown_fields``, its fields the
keys, their annotations the types. msgspec (already here as Litestar's own) checks the types
strictly — no "5432" for 5432, no null for a missing key — and ``msgspec.inspect`` describes the same
declarations to the form, so the rule and its documentation can't drift apart. Anything not
declared is refused: a credential has no key to hide under and goes to the encrypted secret.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlsplit

import msgspec
import msgspec.inspect as mi
from msgspec import Meta

from portal.audit.redact import looks_like_credential

TEXT_MAX = 200
URL_MAX = 2_000
LIST_MAX = 100


class Url(str):
    """An http(s) address with a host, without a user:password part or a credential in its query."""

    label = "URL"


class Email(str):
    label = "email address"


_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+$")

def _url(value: Any) -> Url:
    if not isinstance(value, str):
        raise TypeError("must be a URL in quotes, like \"https://example.com\"")
    if len(value) > URL_MAX:
        raise ValueError(f"must be a URL of at most {URL_MAX:,} characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a port that isn't a number
    except ValueError:
        raise ValueError("isn't a valid URL") from None
    if parts.scheme not in ("https", "http") or not parts.hostname or any(c.isspace() for c in value):
        raise ValueError("must be an http or https URL with a host, like \"https://example.com\"")
    if parts.username is not None or parts.password is not None:
        raise ValueError("can't contain a user name or password; put credentials in the secret field, which is stored encrypted")
    for name, _ in parse_qsl(parts.query, keep_blank_values=True):
        if looks_like_credential(name):  # a signed or token-carrying URL is a credential itself
            raise ValueError(
                f"carries “{name[:60]}” in its query, which looks like a credential; "
                "put credentials in the secret field, which is stored encrypted"
            )
    return Url(value)


def _email(value: Any) -> Email:
    if not isinstance(value, str) or len(value) > 254 or not _EMAIL.match(value):
        raise ValueError("must be an email address in quotes, like \"bot@example.com\"")
    return Email(value)


_CUSTOM = {Url: _url, Email: _email}


def _decode(type_: type, value: Any) -> Any:
    """msgspec's hook for our own types; their errors become ValidationErrors at the key's path."""
    if type_ in _CUSTOM:
        return _CUSTOM[type_](value)
    raise NotImplementedError(type_)


# -- the keys: msgspec enforces the constraints; the description is shown on the form -------------

Text = Annotated[str, Meta(min_length=1, max_length=TEXT_MAX)]
Texts = Annotated[list[Text], Meta(max_length=LIST_MAX)]
SSLMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]


class KindConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Base of every kind's config. A field without a default is a required key (required keys
    come first). The defaults only make a key optional: the config is stored as typed, so they are
    never written."""


class OpenAIConfig(KindConfig):
    base_url: Annotated[Url, Meta(description="API address; set it for a proxy or gateway.")] = None
    organization: Annotated[Text, Meta(description="Organization ID, e.g. org-…")] = None
    project: Annotated[Text, Meta(description="Project ID, e.g. proj_…")] = None


class AnthropicConfig(KindConfig):
    base_url: Annotated[Url, Meta(description="API address; set it for a proxy or gateway.")] = None
    api_version: Annotated[Text, Meta(description="The anthropic-version header, e.g. 2023-06-01.")] = None


class AzureOpenAIConfig(KindConfig):
    endpoint: Annotated[Url, Meta(description="The resource's endpoint, https://<resource>.openai.azure.com.")]
    deployment: Annotated[Text, Meta(description="Name of the model deployment.")]
    api_version: Annotated[Text, Meta(description="API version, e.g. 2024-10-21.")] = None


class SlackConfig(KindConfig):
    workspace: Annotated[Text, Meta(description="Workspace name or ID.")] = None
    default_channel: Annotated[Text, Meta(description="Where messages go unless a workflow says otherwise, e.g. #ops-alerts.")] = None
    unfurl_links: Annotated[bool, Meta(description="Show link previews in posted messages.")] = None


class GitHubConfig(KindConfig):
    owner: Annotated[Text, Meta(description="User or organization that owns the repositories.")] = None
    repositories: Annotated[Texts, Meta(description="Repositories agents may use; all of the owner's when absent.")] = None
    api_url: Annotated[Url, Meta(description="API address of a GitHub Enterprise Server; github.com when absent.")] = None


class JiraConfig(KindConfig):
    site: Annotated[Url, Meta(description="Your Jira site, https://<site>.atlassian.net.")]
    project: Annotated[Text, Meta(description="Default project key, e.g. OPS.")] = None
    user_email: Annotated[Email, Meta(description="The account the API token belongs to.")] = None


class PostgresConfig(KindConfig):
    host: Annotated[Text, Meta(description="Host name or address.")]
    database: Annotated[Text, Meta(description="Database name.")]
    port: Annotated[int, Meta(ge=1, le=65_535, description="5432 when absent.")] = None
    user: Annotated[Text, Meta(description="Role to connect as.")] = None
    sslmode: Annotated[SSLMode, Meta(description="How to use TLS; prefer when absent.")] = None


class S3Config(KindConfig):
    bucket: Annotated[Text, Meta(description="Bucket name.")]
    region: Annotated[Text, Meta(description="AWS region, e.g. eu-west-1.")] = None
    prefix: Annotated[Text, Meta(description="Only objects under this prefix, e.g. reports/.")] = None
    access_key_id: Annotated[Text, Meta(description="The access key's ID; its secret access key goes in the secret field.")] = None
    endpoint_url: Annotated[Url, Meta(description="For S3-compatible storage; AWS when absent.")] = None


class WebhookConfig(KindConfig):
    url: Annotated[Url, Meta(description="Where requests are sent.")]
    method: Annotated[Literal["POST", "PUT", "PATCH"], Meta(description="POST when absent.")] = None
    timeout_seconds: Annotated[int, Meta(ge=1, le=60, description="10 when absent.")] = None


# -- the kinds -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigKey:
    name: str
    type: str
    required: bool
    description: str


def _type_text(t: Any) -> str:
    """A msgspec type, in the words the form uses."""
    if isinstance(t, mi.Metadata):
        return _type_text(t.type)
    if isinstance(t, mi.CustomType):
        return t.cls.label
    if isinstance(t, mi.BoolType):
        return "true or false"
    if isinstance(t, mi.IntType):
        return f"whole number from {t.ge:,} to {t.le:,}" if t.ge is not None and t.le is not None else "whole number"
    if isinstance(t, mi.LiteralType):
        return "one of " + ", ".join(str(v) for v in t.values)
    if isinstance(t, mi.ListType):
        return f"list of {_type_text(t.item_type)}"
    if isinstance(t, mi.StrType):
        return "text"
    return "value"


def _description(t: Any) -> str:
    return (t.extra_json_schema or {}).get("description", "") if isinstance(t, mi.Metadata) else ""


@dataclass(frozen=True)
class Kind:
    label: str
    secret_label: str
    config: type[KindConfig]
    example: dict[str, Any]

    @cached_property
    def keys(self) -> tuple[ConfigKey, ...]:
        """What the form shows, read from the same declarations msgspec checks against."""
        info = mi.type_info(self.config)
        assert isinstance(info, mi.StructType)
        return tuple(ConfigKey(f.name, _type_text(f.type), f.required, _description(f.type)) for f in info.fields)

    @property
    def key_names(self) -> list[str]:
        return [k.name for k in self.keys]


# The fixed list (the database's CHECK constraint holds the same keys). Each example must pass its
# kind's config: the tests check it, and the form shows it.
KINDS: dict[str, Kind] = {
    "openai": Kind("OpenAI", "API key", OpenAIConfig, {"base_url": "https://api.openai.com/v1", "organization": "org-acme"}),
    "anthropic": Kind("Anthropic", "API key", AnthropicConfig, {"base_url": "https://api.anthropic.com"}),
    "azure_openai": Kind(
        "Azure OpenAI", "API key", AzureOpenAIConfig,
        {"endpoint": "https://acme.openai.azure.com", "deployment": "gpt-4o", "api_version": "2024-10-21"},
    ),
    "slack": Kind("Slack", "Bot token", SlackConfig, {"workspace": "acme", "default_channel": "#ops-alerts"}),
    "github": Kind("GitHub", "Access token", GitHubConfig, {"owner": "acme", "repositories": ["platform"]}),
    "jira": Kind(
        "Jira", "API token", JiraConfig, {"site": "https://acme.atlassian.net", "project": "OPS", "user_email": "bot@acme.example"}
    ),
    "postgres": Kind(
        "PostgreSQL", "Password", PostgresConfig,
        {"host": "db.internal", "port": 5432, "database": "analytics", "user": "readonly", "sslmode": "require"},
    ),
    "s3": Kind(
        "Amazon S3", "Secret access key", S3Config, {"bucket": "acme-reports", "region": "eu-west-1", "access_key_id": "AKIAEXAMPLE"}
    ),
    "webhook": Kind("HTTP webhook", "Signing secret", WebhookConfig, {"url": "https://hooks.example.com/agents", "method": "POST"}),
}

SECRET_HINT = "Credentials go only in the secret field, which is stored encrypted; every member can read the configuration."
_SHOWN_MAX = 60  # characters of a refused key quoted back
_SHOWN_KEYS = 5


def _quoted(names: list[str]) -> str:
    shown = [f"“{n if len(n) <= _SHOWN_MAX else n[:_SHOWN_MAX] + '…'}”" for n in names[:_SHOWN_KEYS]]
    more = len(names) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def credential_path(value: Any, path: str = "") -> str | None:
    """The first key, at any depth, whose name says it holds a credential."""
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else key
            if looks_like_credential(key):
                return here
            if found := credential_path(item, here):
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if found := credential_path(item, f"{path}[{i}]"):
                return found
    return None


def credential_problem(config: dict[str, Any]) -> str | None:
    """The hint alone, for a config whose kind isn't known yet."""
    found = [path for key in config if (path := credential_path({key: config[key]}))]
    if not found:
        return None
    return f"{_quoted(found)} {'looks like a credential' if len(found) == 1 else 'look like credentials'}. {SECRET_HINT}"


def _unknown(kind: Kind, unknown: list[str], config: dict[str, Any]) -> str:
    message = (
        f"{kind.label} connections don't accept {_quoted(unknown)} in their configuration. "
        f"They accept only: {', '.join(kind.key_names)}."
    )
    if hint := credential_problem({k: config[k] for k in unknown}):
        return f"{hint} {message}"
    return message


_AT = re.compile(r" - at `\$\.([A-Za-z_]\w*)((?:\[\d+\])*)`$")
_MISSING = re.compile(r"^Object missing required field `(\w+)`")
_GOT = re.compile(r"^Expected `(\w+)`, got `(\w+)`")
_LENGTH = re.compile(r"^Expected `(str|array)` of length ([<>]=) (\d+)")
_JSON_TYPES = {
    "str": "text in quotes", "int": "a whole number", "float": "a number", "bool": "true or false",
    "array": "a list", "object": "an object",
}


def _a(type_text: str) -> str:
    if type_text.startswith(("one of", "true or false", "text")):
        return type_text
    return ("an " if type_text.startswith("email") else "a ") + type_text


def _type_problem(kind: Kind, error: str) -> str:
    """msgspec's ValidationError, said in the form's words and with the kind's own types."""
    keys = {k.name: k for k in kind.keys}
    if (missing := _MISSING.match(error)) and missing[1] in keys:
        key = keys[missing[1]]
        return f"Add “{key.name}” ({key.type}): every {kind.label} connection needs it."
    at = _AT.search(error)
    if not at or at[1] not in keys:
        return f"The configuration doesn't fit a {kind.label} connection: {error}."
    key, item = keys[at[1]], at[2]
    path, reason = at[1] + item, error[: at.start()]
    if key.type in (Url.label, Email.label):
        return f"“{path}” {reason}."
    if length := _LENGTH.match(reason):
        noun = "characters" if length[1] == "str" else "items"
        return f"“{path}” can't be empty." if length[2] == ">=" else f"“{path}” can have at most {int(length[3]):,} {noun}."
    if item:
        got = _GOT.match(reason)
        return f"“{path}” must be {_JSON_TYPES.get(got[1], got[1])}." if got else f"“{path}”: {reason}."
    return f"“{path}” must be {_a(key.type)}."


def config_problem(kind: Kind, config: dict[str, Any]) -> str | None:
    """Why ``config`` can't be this kind's, or None. Unknown keys first (all of them, with the
    keys the kind accepts), then msgspec's strict check of the declared types."""
    accepted = set(kind.key_names)
    if unknown := [k for k in config if k not in accepted]:
        return _unknown(kind, unknown, config)
    try:
        msgspec.convert(config, kind.config, dec_hook=_decode)
    except msgspec.ValidationError as exc:
        return _type_problem(kind, str(exc))
    return None
