"""One settings object for the library, the CLI and the API (environment variables ``QA_*``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent
_CHECKOUT = PACKAGE_DIR.parent

# Checked with fullmatch: ``$`` would also accept a trailing newline ("evil\n").
COLLECTION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# release-notes pages, by title or id (qa.search.history): "What's New In Python 3.0", a changelog
HISTORY_PAGES = (
    r"what['\u2019]?s[ _-]?new|change[ _-]?log|release[ _-]?notes|release[ _-]?history"
    r"|version[ _-]?history"
)


def _bundled(folder: str) -> Path:
    """A folder shipped with the project: the checkout's copy, or the one inside the wheel."""
    in_checkout = _CHECKOUT / folder
    if (_CHECKOUT / "pyproject.toml").exists() and in_checkout.is_dir():
        return in_checkout
    return PACKAGE_DIR / f"_{folder}"


def default_index_dir() -> Path:
    """``index/`` of the checkout, or ``./index`` when the package is installed as a wheel."""
    if (_CHECKOUT / "pyproject.toml").exists():
        return _CHECKOUT / "index"
    return Path.cwd() / "index"


def validate_collection_name(name: str) -> str:
    """Reject names that could escape the index folder or confuse a URL."""
    if not isinstance(name, str) or not COLLECTION_NAME.fullmatch(name) or name in {".", ".."}:
        raise ValueError(
            f"invalid collection name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def parse_duration(value: str) -> float | None:
    """Seconds in ``90``, ``30s``, ``30m``, ``6h`` or ``1d`` (empty: ``None``)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", value.lower())
    if not value.strip():
        return None
    if match is None:
        raise ValueError(f"invalid duration {value!r}: use e.g. 90, 30s, 30m, 6h or 1d")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


class Settings(BaseSettings):
    """Everything that can be configured. CLI flags override the environment."""

    model_config = SettingsConfigDict(env_prefix="QA_", extra="ignore")

    # Where things live
    index_dir: Path = Field(default_factory=default_index_dir)
    corpus_dir: Path = Field(default_factory=lambda: _bundled("corpus"))
    web_dir: Path = Field(default_factory=lambda: _bundled("web"))
    collection: str = "default"

    # Embedding
    model: str | None = Field(
        default=None, description="sentence-transformers model folder; default: bundled MiniLM"
    )
    batch_size: int = Field(
        default=16, ge=1, le=1024, description="torch batches (16: ~7% faster than 32 on CPU)"
    )
    threads: int | None = Field(default=None, ge=1, description="torch threads (default: torch's)")
    query_backend: Literal["auto", "onnx", "onnx-int8", "torch"] = Field(
        default="auto",
        description="encoder for questions: auto = ONNX when the model allows, else torch",
    )
    passage_backend: Literal["auto", "torch", "onnx", "onnx-int8"] = Field(
        default="auto",
        description="encoder for passages: auto = the int8 ONNX export where it agrees with "
        "float32 on this CPU (about 2x faster indexing), else torch",
    )

    own_sentence_vectors: bool = Field(
        default=True,
        description="store each sentence's vector embedded on its own, so answering runs no "
        "model beyond the question (indexing takes about twice the model time; false: the "
        "answer step embeds up to 3 sentences for the questions that need them)",
    )

    # Passages
    max_passage_tokens: int | None = Field(
        default=None, ge=16, description="word pieces per passage (default: the model's window)"
    )
    min_passage_chars: int = Field(default=40, ge=0)
    max_file_mb: float = Field(
        default=50, gt=0, description="larger files are skipped when indexing a folder"
    )
    # Each file (and each upload) is parsed in a worker process with a time and a memory
    # budget; a file over either is skipped with the reason, and the worker restarted.
    parse_timeout_s: float = Field(
        default=30, gt=0, description="seconds one file may take to parse"
    )
    parse_memory_mb: int = Field(
        default=1024, ge=16, description="memory one file may need to parse, above the worker's own"
    )
    title_in_embedding: bool = True

    # The store at scale (README "A million passages")
    dense_index: Literal["auto", "flat", "ivf-sq8", "hnsw"] = Field(
        default="auto",
        description="dense index of each segment: auto = flat below dense_flat_below vectors, "
        "else ivf-sq8",
    )
    dense_memory: Literal["map", "load"] = Field(
        default="map",
        description="approximate (IVF) indexes memory-mapped, shared by every server process "
        "on the machine, or loaded into each process (at 1M passages 3.6 instead of 6.1 ms a "
        "question on the development machine, for 380 MB per process)",
    )
    dense_flat_below: int = Field(
        default=20_000, ge=1, description="segments smaller than this get an exact index"
    )
    segment_passages: int = Field(
        default=50_000,
        ge=100,
        description="a build seals a segment every this many passages (bounds its memory)",
    )
    merge_factor: int = Field(
        default=4, ge=2, description="segments of one size tier merged together"
    )
    background_merge: bool = Field(
        default=True, description="qa serve merges segments in the background after writes"
    )
    # A save is usually a burst of events (write, rename, chmod); an editor's autosave repeats
    # it. One second of quiet groups them into one update (issue 18's "20 saves, 1 re-index").
    watch_debounce_ms: int = Field(
        default=1000, ge=50, le=60_000, description="qa watch: quiet time before an update"
    )
    watch: bool = Field(
        default=False, description="qa serve follows the folders collections were built from"
    )
    ray_actors: int = Field(
        default=0,
        ge=0,
        description="--engine ray: embedding actors (0 = the cluster's CPUs / ray_actor_cpus)",
    )
    ray_actor_cpus: int = Field(
        default=2, ge=1, description="--engine ray: CPUs (torch threads) of each embedding actor"
    )

    # Retrieval and answering
    retriever: Literal["hybrid", "dense", "bm25"] = "hybrid"
    fusion: Literal["convex", "rrf"] = "convex"
    fusion_alpha: float = Field(
        default=0.5, ge=0, le=1, description="dense share of the convex fusion"
    )
    sentence_weight: float = Field(
        default=0.6, ge=0, le=1, description="sentence-level share of the hybrid score"
    )
    answer_type_weight: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="hybrid ranking bonus for a passage holding the kind of fact asked for",
    )
    history_weight: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="hybrid ranking penalty for a passage of a release-notes page, unless the "
        "question asks about versions, changes, dates or people",
    )
    history_pages: str = Field(
        default=HISTORY_PAGES,
        max_length=1000,
        description="regular expression (case-insensitive) for the titles or ids of release-notes "
        "pages; empty: none",
    )
    unknown_names: bool = Field(
        default=True,
        description="say the documents never mention an API or option the question names "
        "(glob.translate(), --disable-gil) when no passage does, instead of answering",
    )
    min_answer_score: float = Field(
        default=0.38,
        ge=-10,  # below -1 only with a missing-term penalty
        le=2,
        description="abstain below this answer score (calibrated for MiniLM: scripts/calibrate_abstention.py)",
    )
    missing_term_weight: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="the answer score loses this x the idf of the rarest question term no "
        "considered passage holds (0: off; qa tune fits it per collection)",
    )
    top_k: int = Field(default=5, ge=1, le=50)
    reranker: str | None = None
    reranker_top_n: int = Field(default=20, ge=1, le=200)

    # Optional generation by an OpenAI-compatible model server (Ollama, vLLM, llama.cpp)
    llm_url: str | None = Field(
        default=None,
        description="base URL of an OpenAI-compatible server, e.g. http://127.0.0.1:11434/v1; "
        "unset: answers are the quoted sentences only",
    )
    llm_model: str | None = Field(default=None, description="the model name the server knows")
    llm_api_key: SecretStr | None = None
    llm_timeout_s: float = Field(
        default=20.0, gt=0, description="past this the extractive answer is sent, with a notice"
    )
    llm_max_tokens: int = Field(default=400, ge=16, le=8192)
    llm_passages: int = Field(default=5, ge=1, le=20, description="top passages given to the model")
    llm_min_support: float = Field(
        default=0.54,
        ge=0,
        le=1,
        description="a generated sentence scoring below this against its cited passages is "
        "dropped (calibrated: scripts/calibrate_verifier.py)",
    )

    # Web chat
    title: str = Field(
        default="Ask the documents", description="heading of the chat page and widget"
    )
    starter_questions: Annotated[list[str], NoDecode] | None = Field(
        default=None, description="'|'-separated; default: the bundled corpus's own starters"
    )

    # HTTP
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    api_key: SecretStr | None = None
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="addresses (or CIDR ranges) of reverse proxies whose X-Forwarded-For/-Proto are believed; "
        "default none: the client is the peer address",
    )
    # Who may see what (qa.access): how a request's caller is identified
    auth: Literal["none", "keys", "header", "oidc"] = Field(
        default="none", description="none: everything public, writes with QA_API_KEY (a laptop)"
    )
    public_read: bool = Field(
        default=False, description="callers without credentials read the public documents"
    )
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_groups_claim: str = "groups"
    oidc_refetch_s: float = Field(
        default=60.0, ge=0, description="at most one JWKS read per this many seconds"
    )
    rate_limit_per_minute: int = Field(default=300, ge=0, description="per client; 0 disables")
    rate_limit_burst: int = Field(default=60, ge=1)
    request_timeout_s: float = Field(
        default=30.0, gt=0, description="questions not answered in time get a 504"
    )
    body_read_timeout_s: float = Field(
        default=10.0, gt=0, description="request headers, then the body, must arrive within this"
    )
    max_inflight: int = Field(
        default=32,
        ge=1,
        description="questions being worked on at once (abandoned ones included); more get a 503",
    )
    question_threads: int | None = Field(
        default=None,
        ge=1,
        description="threads answering questions at once (default: one per CPU, at least 2); "
        "the other in-flight questions wait their turn",
    )
    reply_cache: int = Field(
        default=1024,
        ge=0,
        description="replies remembered for repeated questions (per generation, caller and "
        "filters); 0 turns the cache off",
    )
    max_loaded_collections: int = Field(
        default=8, ge=1, description="collections kept in memory (least recently used go)"
    )
    max_collections: int = Field(
        default=100, ge=1, description="collections the write API may create"
    )
    log_json: bool = True
    public_url: str | None = Field(
        default=None,
        description="the address readers reach the service at (https://docs.example.com); "
        "citation links start with it (default: the address the request came to)",
    )

    # Feedback (stored beside each collection's index, in feedback.sqlite)
    feedback: bool = Field(default=True, description="readers may rate answers (POST /v1/feedback)")
    feedback_max_comment_chars: int = Field(
        default=1000, ge=0, le=10_000, description="longest comment a reader may send"
    )
    feedback_max_records: int = Field(
        default=100_000,
        ge=1,
        description="records kept per collection; past it new feedback is refused (507), so "
        "clients can't fill the disk",
    )
    record_unanswered: bool = Field(
        default=False,
        description="also store every question the service did not answer (question, history, "
        "collection, generation, time) for `qa report`; off: only what readers send",
    )

    # Websites (qa index URL): politeness and limits of the crawler, and the re-sync schedule
    crawl_max_pages: int = Field(default=1000, ge=1, description="pages fetched per crawl")
    crawl_max_depth: int = Field(default=10, ge=0, description="links followed from the start")
    crawl_max_page_mb: float = Field(
        default=10, gt=0, description="a page is read up to this size, then skipped"
    )
    crawl_concurrency: int = Field(default=4, ge=1, le=16, description="requests at a time")
    crawl_delay_s: float = Field(
        default=0.25, ge=0, description="least time between two requests' starts (politeness)"
    )
    crawl_timeout_s: float = Field(default=15, gt=0, description="one request's time budget")
    sync_every: float | None = Field(
        default=None,
        gt=0,
        description="qa serve re-syncs collections built from URLs this often (seconds, or "
        "a duration such as 30m, 6h, 1d); unset: never",
    )

    @model_validator(mode="after")
    def _llm_needs_model(self) -> Settings:
        if self.llm_url and not self.llm_model:
            raise ValueError("QA_LLM_URL is set but QA_LLM_MODEL is not: name the model to use")
        return self

    @field_validator("collection")
    @classmethod
    def _check_collection(cls, value: str) -> str:
        return validate_collection_name(value)

    @field_validator("history_pages")
    @classmethod
    def _check_pattern(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().rstrip("/") for part in value.split(",") if part.strip()]
        return value

    @field_validator("starter_questions", mode="before")
    @classmethod
    def _split_starters(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split("|") if part.strip()]
        return value

    @field_validator("sync_every", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("model", "reranker", "public_url", "llm_url", "llm_model", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
            raise ValueError("give an http(s) address without query or fragment, e.g. https://host")
        return value.rstrip("/")

    def collection_dir(self, name: str | None = None) -> Path:
        """The folder of one collection under ``index_dir``."""
        return self.index_dir / validate_collection_name(name or self.collection)
