"""The Gradio Blocks app: Ask (chat with cited answers), Search, and Documents (upload, list, remove, indexes).

``build_app`` wires components to :class:`ui.handlers.Handlers`; ``launch`` starts it bound to
127.0.0.1 unless told otherwise, with a queue, an upload size limit and no share link unless asked.
Given a users file (:class:`ui.users_file.UsersStore`), ``launch`` turns on Gradio's sign-in with
our password check and failure limits, or proxy single sign-on, and the gate that keeps every
route but the login page closed until then (:mod:`ui.auth`); the index list is then filled per
user when the page loads, so the page itself names no index, and the account line with the user's
role, Upload, Remove and Create index follow the index in use (shown only to a role that may use them).
The Reader list holds only the readers the operator offers (:mod:`ui.readers`); any file a request
names must have been uploaded here (:mod:`ui.request_guard`); Gradio's run history (and its offer to
save runs to Hugging Face storage) is off.
"""

from __future__ import annotations

import os
from pathlib import Path

import gradio as gr
from starlette.middleware import Middleware

from ingest.loaders import SUPPORTED_SUFFIXES
from rag_qa.config import MODES, Settings, get_settings
from ui.access import Access
from ui.auth import AUTH_MESSAGE, AuthGate, PasswordSignIn, header_user
from ui.handlers import DOCUMENT_HEADERS, Handlers
from ui.indexes import IndexCatalog
from ui.readers import OfferedReaders
from ui.request_guard import GuardedBlocks
from ui.sessions import Sessions
from ui.signin_limits import SignInLimiter
from ui.style import CSS
from ui.users_file import UsersStore
from ui.validation import MAX_TOP_K, MIN_TOP_K

CONCURRENCY = 4  # questions answered at once, in parallel (a reader's lock guards only its one-time loading)
QUEUE_SIZE = 64  # requests waiting at most; more are turned away by Gradio with "queue is full"


def reader_dropdown(readers: OfferedReaders) -> gr.Dropdown:
    """The Reader list: the page offers only the operator's readers, nothing typed in.  A value from outside
    the list is refused by :meth:`ui.handlers.Handlers.ask`, which writes the refusal to the audit trail;
    Gradio's own check would refuse it first, unrecorded, so this one list skips that check.  (Not a
    subclass: Gradio writes a ``.pyi`` file beside the module of every component class defined.)"""
    dropdown = gr.Dropdown(readers.names(), value=readers.default, label="Reader", elem_id="reader",
                           allow_custom_value=False, scale=2, info="the readers this server offers")
    dropdown.preprocess = lambda payload: payload  # type: ignore[method-assign]
    return dropdown


def build_app(index: Path | None = None, settings: Settings | None = None,
              indexes_root: Path = Path("indexes"), users: UsersStore | None = None) -> gr.Blocks:
    """The app over ``index`` (default: the settings' index); new indexes are created under ``indexes_root``.

    With ``users``, every handler checks the signed-in user's role on the index it touches.
    """
    settings = settings or get_settings()
    catalog = IndexCatalog(indexes_root, Path(index or settings.index), settings)
    readers = OfferedReaders(settings)
    h = Handlers(catalog, settings.max_upload_mb, Access(catalog, users), readers)
    # with sign-in the list is filled per user on page load: the page sent to everyone names no index
    index_choices, index_value = ([], None) if users is not None else (catalog.choices(), str(catalog.initial))
    signed_in = users is not None  # with sign-in, what a role may not do is hidden until the role is known

    def refused_files(user: str | None, endpoint: str, paths: list[str], inputs: list, message: str) -> None:
        index_value = inputs[1] if endpoint == "upload" and len(inputs) > 1 else None
        h.guard.audit_refusal(user, endpoint, index_value, message, files=paths)

    with GuardedBlocks(title="rag-qa", on_refused=refused_files) as demo:
        gr.Markdown("## rag-qa: ask your documents\nAnswers come only from the documents in the chosen index, "
                    "with the passages they came from.")
        account = gr.HTML(elem_id="account", visible=signed_in)
        with gr.Row():
            # allow_custom_value with sign-in: Gradio would check values against the (empty) build-time list;
            # the handlers check every value against what the signed-in user may use (ui.access)
            index_dd = gr.Dropdown(index_choices, value=index_value, label="Index", elem_id="index", scale=3,
                                   allow_custom_value=signed_in)
            reader = reader_dropdown(readers)
            modes = [settings.mode, *(m for m in MODES if m != settings.mode)]  # the default first
            mode = gr.Dropdown(modes, value=settings.mode, label="Retrieval mode", elem_id="mode", scale=1)
            top_k = gr.Slider(MIN_TOP_K, MAX_TOP_K, value=min(max(settings.top_k, MIN_TOP_K), MAX_TOP_K), step=1,
                              label="Passages (top-k)", elem_id="top-k", scale=1)
        with gr.Tabs():
            with gr.Tab("Ask", id="ask", elem_id="tab-ask"):
                chat = gr.Chatbot(label="Chat", elem_id="chat", height=460, latex_delimiters=[],
                                  feedback_options=None, placeholder="Ask a question about your documents.")
                with gr.Row():
                    question = gr.Textbox(placeholder="e.g. Who founded Mozilla?", show_label=False,
                                          elem_id="question", scale=5, submit_btn=False)
                    ask_btn = gr.Button("Ask", variant="primary", elem_id="ask-button", scale=1)
                    clear = gr.Button("Clear chat", elem_id="clear-chat", scale=1)
                with gr.Accordion("Last answer as JSON", open=False):
                    answer_json = gr.JSON(elem_id="answer-json")
            with gr.Tab("Search", id="search", elem_id="tab-search"):
                with gr.Row():
                    query = gr.Textbox(placeholder="words or a question", show_label=False, elem_id="query", scale=5)
                    search_btn = gr.Button("Search", variant="primary", elem_id="search-button", scale=1)
                results = gr.HTML(elem_id="search-results")
            with gr.Tab("Documents", id="documents", elem_id="tab-documents"):
                files = gr.File(label=f"Upload documents ({' '.join(SUPPORTED_SUFFIXES)}; "
                                f"up to {settings.max_upload_mb:g} MB each)",
                                file_count="multiple", elem_id="upload", visible=not signed_in)
                docs_status = gr.HTML(elem_id="upload-status")
                table = gr.Dataframe(headers=DOCUMENT_HEADERS, interactive=False, wrap=True, elem_id="documents",
                                     label="Indexed documents")
                with gr.Row(visible=not signed_in, elem_id="remove-row") as remove_row:
                    # custom values: an API caller names a source without first loading the list in its
                    # session; Handlers.remove checks the role and removes only what the index holds
                    remove_dd = gr.Dropdown([], label="Document to remove", elem_id="remove-choice", scale=4,
                                            allow_custom_value=True)
                    remove_btn = gr.Button("Remove", variant="stop", elem_id="remove-button", scale=1)
                with gr.Row(visible=not signed_in, elem_id="create-row") as create_row:
                    new_index = gr.Textbox(label="New index name", placeholder="e.g. my-notes", elem_id="new-index",
                                           scale=4)
                    create_btn = gr.Button("Create index", elem_id="create-index", scale=1)

        index_view = [index_dd, docs_status, table, remove_dd]
        # the account line with the role, and what that role may use, follow the index in use
        role_view = {"fn": h.page, "inputs": index_dd, "outputs": [account, files, remove_row, create_row],
                     "api_visibility": "private"}
        ask_args = {"fn": h.ask, "inputs": [question, chat, reader, mode, top_k, index_dd],
                    "outputs": [chat, answer_json, question]}
        question.submit(**ask_args, api_name="ask")
        ask_btn.click(**ask_args, api_visibility="private")
        clear.click(lambda: ([], {}), outputs=[chat, answer_json], api_visibility="private")
        search_args = {"fn": h.search, "inputs": [query, mode, top_k, index_dd], "outputs": results}
        query.submit(**search_args, api_name="search")
        search_btn.click(**search_args, api_visibility="private")
        write = {"concurrency_id": "index-write", "concurrency_limit": 1}
        files.upload(h.upload, [files, index_dd], [docs_status, table, remove_dd], api_name="upload", **write).then(
            lambda: None, outputs=files, api_visibility="private")
        remove_btn.click(h.remove, [remove_dd, index_dd], [docs_status, table, remove_dd], api_name="remove", **write)
        index_dd.input(h.open_index, index_dd, index_view, api_name="open_index").then(**role_view)
        create_btn.click(h.create_index, [new_index, index_dd], index_view, api_name="create_index").then(
            **role_view)
        demo.load(h.open_index, index_dd, index_view, api_visibility="private").then(**role_view)
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
    return demo


def _sign_in_options(settings: Settings, users: UsersStore) -> dict:
    """``launch()`` options for sign-in: Gradio's login with our password check, or proxy single sign-on."""
    sso = settings.trusted_user_header
    if sso:
        # uvicorn would otherwise replace the peer address with X-Forwarded-For from a loopback peer;
        # the header check needs the real peer (and no password sign-in uses addresses in this mode)
        os.environ["FORWARDED_ALLOW_IPS"] = ""
        # no sessions of ours: the proxy vouches for every request, so its own session rules apply
        return {"app_kwargs": {"middleware": [Middleware(AuthGate, users=users, sso=True)]}, "auth_dependency":
                header_user(users, sso)}
    sessions = Sessions(users, settings.session_idle_s, settings.session_max_s, settings.signin_log)
    options: dict = {"app_kwargs": {"middleware": [Middleware(AuthGate, users=users, sessions=sessions)]}}
    limiter = SignInLimiter(settings.signin_max_failures, settings.signin_max_failures_per_address,
                            settings.signin_window_s, settings.signin_lockout_s)
    options["auth"] = PasswordSignIn(users, limiter, settings.signin_log, settings.signin_failure_delay_s,
                                     sessions=sessions).check
    options["auth_message"] = AUTH_MESSAGE.format(n=settings.signin_max_failures,
                                                  m=settings.signin_max_failures_per_address,
                                                  minutes=max(1, round(settings.signin_lockout_s / 60)))
    return options


def launch(demo: gr.Blocks, settings: Settings, *, host: str | None = None, port: int | None = None,
           share: bool = False, block: bool = True, users: UsersStore | None = None) -> None:
    """Serve ``demo``: 127.0.0.1 and the settings' port by default, a share link only when ``share``.

    With ``users`` every page and API call needs a signed-in user (see :func:`_sign_in_options`).
    """
    demo.launch(
        **(_sign_in_options(settings, users) if users is not None else {}),
        root_path=settings.root_path or None,
        server_name=host or settings.host,
        server_port=port or settings.port,
        share=share,
        max_file_size=int(settings.max_upload_mb * 1024 * 1024),
        ssr_mode=False,
        enable_monitoring=False,
        mcp_server=False,
        # no run history: its footer link offers to save runs to Hugging Face storage, and nothing phones home
        run_history=False,
        prevent_thread_lock=not block,
        css=CSS,
        quiet=not block,
    )
