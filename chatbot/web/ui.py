"""The Gradio chat UI (the only module that imports gradio), mounted at /ui.

Every handler finds the user from the session cookie on each event and goes through the same
services as the API: ``ChatService.stream``/``rate``, the Repository, ``UserDocuments``.
Uploads are copied out of Gradio's temp folder and that copy is deleted at once; nothing of a
user's is ever served through Gradio's file routes (``allowed_paths`` is empty).
Only component wiring lives here: a chat turn is ``ui_chat.turn``, the Profile tab's text and
edits are in ``ui_profile`` and ``profile``; ``static/ui.js`` reports opened sources and
deletes the account through the API.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import anyio
import gradio as gr
from fastapi import FastAPI, Request

from chatbot.domain import (
    FEEDBACK_REASONS,
    InvalidInputError,
    NotFoundError,
)
from chatbot.web import admin, profile, ui_chat, ui_profile, views
from chatbot.web.auth import SESSION_COOKIE, Principal
from chatbot.web.context import WebContext, session_principal
from chatbot.web.documents import ALLOWED_SUFFIXES, remove_temp_copy
from chatbot.web.errors import ApiError, UnavailableError
from chatbot.web.pages import STATIC_DIR
from chatbot.web.views import safe_markdown, trace_markdown

FONTS = ["system-ui", "Segoe UI", "Noto Sans", "Noto Sans CJK SC", "WenQuanYi Zen Hei",
         "PingFang SC", "Microsoft YaHei", "sans-serif"]  # fmt: skip
HEAD = '<script src="/static/ui.js" defer></script>'
_empty_state = ui_chat.empty_state


def build_ui(context: WebContext) -> gr.Blocks:
    """The chat UI; handlers close over ``context``."""
    repo, chat, documents = context.repo, context.container.chat, context.documents
    profiles = context.container.profiles
    actions = ui_profile.ProfileActions(context)
    title_of = views.title_lookup(context.container.store)
    n_chips = max(0, context.container.settings.personalisation.recommendations)

    def user(request: gr.Request) -> Principal:
        raw = getattr(request, "request", None)
        cookies = raw.cookies if raw is not None else request.kwargs.get("cookies", {})
        principal = session_principal(context, cookies.get(SESSION_COOKIE))
        if principal is None:
            raise gr.Error("Your session has ended; reload the page to sign in again.")
        return principal

    def conversation_choices(p: Principal) -> list[tuple[str, str]]:
        return [(c.title, c.id) for c in repo.list_conversations(user_id=p.user_id)]

    def document_rows(p: Principal) -> tuple[list[list[Any]], Any]:
        docs = documents.list(p.user_id)
        rows = [[d.title, d.filename, d.language, d.chunks, d.ingested_at] for d in docs]
        return rows, gr.update(
            choices=[(f"{d.title} ({d.filename})", d.id) for d in docs], value=None
        )

    # -- page load -----------------------------------------------------------------------------

    def on_load(request: gr.Request) -> tuple[Any, ...]:
        p = user(request)
        rows, picker = document_rows(p)
        who = f"Signed in as **{safe_markdown(p.username)}**{' · admin' if p.is_admin else ''}"
        choices = gr.update(choices=conversation_choices(p), value=None)
        return who, choices, gr.update(visible=p.is_admin), rows, picker, _empty_state()

    # -- chatting ------------------------------------------------------------------------------

    def why_of(trace: dict[str, Any] | None) -> str:
        lines = ui_profile.stored_explanation(profiles.explain, trace, title_of)
        return ui_profile.why_markdown(lines, trace, title_of)

    def chip_updates(state: dict[str, Any]) -> list[Any]:
        labels = ui_profile.chip_labels(state["recommendations"], n_chips)
        return [gr.update(value=label, visible=label is not None) for label in labels]

    def no_chips() -> list[Any]:  # the chips and the re-ask button, hidden
        return [gr.update(visible=False)] * (n_chips + 1)

    def answer(
        text: str, state: dict[str, Any], p: Principal, personalise: bool
    ) -> Iterator[tuple[Any, ...]]:
        """Stream one answer; outputs are ``chat_out`` (the chips and re-ask come last)."""
        keep = gr.update()
        for f in ui_chat.turn(context, state, p, text, personalise):
            if f.start:
                hide = gr.update(visible=False)
                yield state["messages"], "", state, keep, keep, hide, *no_chips()
            elif f.done is None:
                yield state["messages"], f.box, state, keep, keep, keep, *[keep] * (n_chips + 1)
            else:
                choices = gr.update(choices=conversation_choices(p), value=f.done.conversation_id)
                why = ui_profile.why_markdown(f.done.explanation, f.done.trace, title_of)
                reask = gr.update(visible=personalise and profiles.active(p.user_id))
                yield state["messages"], "", state, choices, why, keep, *chip_updates(state), reask

    def respond(
        message: str, state: dict[str, Any], request: gr.Request
    ) -> Iterator[tuple[Any, ...]]:
        p = user(request)
        text = (message or "").strip()
        if text:
            yield from answer(text, state, p, personalise=True)

    def reask(state: dict[str, Any], request: gr.Request) -> Iterator[tuple[Any, ...]]:
        p = user(request)
        if not state.get("question"):
            raise gr.Error("Ask a question first.")
        yield from answer(state["question"], state, p, personalise=False)

    def chip_text(index: int) -> Any:
        def pick(state: dict[str, Any]) -> Any:
            question = ui_profile.chip_question(state, index)
            if question is None:  # stops the chain: nothing is asked
                raise gr.Error("That suggestion is gone; ask again.")
            return question

        return pick

    def open_conversation(conversation_id: str | None, request: gr.Request) -> tuple[Any, ...]:
        p = user(request)
        state = _empty_state()
        if not conversation_id:
            return [], state, "", trace_markdown(None), *no_chips()
        conversation = repo.get_conversation(user_id=p.user_id, conversation_id=conversation_id)
        messages = repo.list_messages(user_id=p.user_id, conversation_id=conversation_id)
        state.update(
            conversation_id=conversation_id,
            messages=views.history_messages(messages),
            ids=[m.id if m.role == "assistant" else None for m in messages],
        )
        last = next((m for m in reversed(messages) if m.role == "assistant"), None)
        trace = repo.get_trace(user_id=p.user_id, message_id=last.id) if last else None
        return state["messages"], state, conversation.title, why_of(trace), *no_chips()

    def new_conversation(request: gr.Request) -> tuple[Any, ...]:
        p = user(request)
        choices = gr.update(choices=conversation_choices(p), value=None)
        return [], _empty_state(), choices, "", *no_chips()

    def rename(state: dict[str, Any], title: str, request: gr.Request) -> Any:
        p = user(request)
        if not state["conversation_id"]:
            raise gr.Error("Pick a conversation first.")
        try:
            repo.rename_conversation(
                user_id=p.user_id, conversation_id=state["conversation_id"], title=title
            )
        except InvalidInputError as exc:
            raise gr.Error(str(exc)) from exc
        return gr.update(choices=conversation_choices(p), value=state["conversation_id"])

    def delete(state: dict[str, Any], request: gr.Request) -> tuple[Any, ...]:
        p = user(request)
        if state["conversation_id"]:
            repo.delete_conversation(user_id=p.user_id, conversation_id=state["conversation_id"])
        choices = gr.update(choices=conversation_choices(p), value=None)
        return [], _empty_state(), choices, "", *no_chips()

    def show_why(state: dict[str, Any], selected: gr.SelectData, request: gr.Request) -> Any:
        p = user(request)
        message_id = ui_chat.message_at(state, selected.index)
        if message_id is None:
            return gr.update()
        return why_of(repo.get_trace(user_id=p.user_id, message_id=message_id))

    # -- feedback ------------------------------------------------------------------------------

    def on_like(state: dict[str, Any], liked: gr.LikeData, request: gr.Request) -> tuple[Any, ...]:
        p = user(request)
        message_id = ui_chat.message_at(state, liked.index)
        rating = {True: "up", "Like": "up", False: "down", "Dislike": "down"}.get(liked.liked)
        if message_id is None or rating is None:
            return gr.update(), "", state
        chat.rate(user_id=p.user_id, message_id=message_id, rating=rating)
        state["rated"] = (message_id, rating)
        if rating == "up":
            return gr.update(visible=False), "Thanks! 👍 saved.", state
        return gr.update(visible=True), "👎 saved. What went wrong? (optional)", state

    def send_feedback(
        state: dict[str, Any], reason: str | None, comment: str, request: gr.Request
    ) -> tuple[Any, ...]:
        p = user(request)
        if not state.get("rated"):
            raise gr.Error("Rate an answer with 👍 or 👎 first.")
        message_id, rating = state["rated"]
        try:
            chat.rate(user_id=p.user_id, message_id=message_id, rating=rating,
                      reason=reason or None, comment=comment or None)  # fmt: skip
        except InvalidInputError as exc:
            raise gr.Error(str(exc)) from exc
        return gr.update(visible=False), "Thanks — your feedback was saved.", None, ""

    # -- documents -----------------------------------------------------------------------------

    def on_upload(path: str | None, request: gr.Request) -> tuple[Any, ...]:
        p = user(request)
        if not path:
            return None, "", *document_rows(p)
        temp = Path(path)
        try:
            with temp.open("rb") as data:
                result = documents.add(p.user_id, temp.name, data)
            message = f"**{safe_markdown(result.document.title)}**: {result.status}, " \
                      f"{result.document.chunks} passages indexed — only you can search it."  # fmt: skip
        except (InvalidInputError, UnavailableError) as exc:
            message = f"⚠️ {safe_markdown(str(exc))}"
        except ApiError as exc:
            message = f"⚠️ {safe_markdown(exc.message)}"
        finally:
            remove_temp_copy(temp)
        return None, message, *document_rows(p)

    def delete_document(doc_id: str | None, request: gr.Request) -> tuple[Any, ...]:
        p = user(request)
        if not doc_id:
            raise gr.Error("Pick a document first.")
        documents.delete(p.user_id, doc_id)
        return "Deleted.", *document_rows(p)

    # -- profile -------------------------------------------------------------------------------

    def profile_panel(p: Principal, note: str = "") -> tuple[Any, ...]:
        view = profile.profile_public(context, p.user_id)
        picker = gr.update(choices=ui_profile.interest_choices(view), value=None)
        return (ui_profile.status_markdown(view, note), view["personalisation"],
                ui_profile.interest_rows(view), picker, 0, *ui_profile.fact_values(view))  # fmt: skip

    def act(request: gr.Request, action: Any, *args: Any) -> tuple[Any, ...]:
        """Run a Profile-tab edit for the signed-in user, then redraw the tab with its note."""
        p = user(request)
        try:
            note = action(p.user_id, *args)
        except (InvalidInputError, NotFoundError) as exc:
            raise gr.Error(str(exc)) from exc
        return profile_panel(p, note)

    def show_profile(request: gr.Request) -> tuple[Any, ...]:
        return profile_panel(user(request))

    def pick_interest(interest_id: str | None, request: gr.Request) -> float:
        return actions.weight_of(user(request).user_id, interest_id)

    def set_personalised(on: bool, request: gr.Request) -> tuple[Any, ...]:
        return act(request, actions.personalise, on)

    def save_weight(interest_id: str | None, weight: float, request: gr.Request) -> tuple[Any, ...]:
        return act(request, actions.weight, interest_id, weight)

    def forget_interest(interest_id: str | None, request: gr.Request) -> tuple[Any, ...]:
        return act(request, actions.forget, interest_id)

    def save_facts(lang: str, level: str, style: str, persona: str, request: gr.Request) -> Any:
        return act(request, actions.facts, lang, level, style, persona)

    def reset_profile(request: gr.Request) -> tuple[Any, ...]:
        return act(request, actions.reset)

    # -- admin ---------------------------------------------------------------------------------

    def require_admin(request: gr.Request) -> Principal:
        p = user(request)
        if not p.is_admin:
            raise gr.Error("Administrators only.")
        return p

    def admin_refresh(request: gr.Request) -> tuple[Any, ...]:
        require_admin(request)
        return admin.dashboard(context)

    def admin_reingest(request: gr.Request) -> str:
        require_admin(request)
        return admin.reingest_samples(context)

    # -- layout --------------------------------------------------------------------------------

    # Files posted to Gradio's upload route (also straight, not through the UI) are removed
    # from its temp folder 15 minutes later; the UI ingests an upload as soon as it arrives.
    with gr.Blocks(title="chatbot", analytics_enabled=False, delete_cache=(300, 900)) as demo:
        state = gr.State(_empty_state())
        with gr.Row(equal_height=True):
            gr.Markdown("## 💬 chatbot")
            who = gr.Markdown(elem_id="who")
            gr.Button("Log out", link="/logout", size="sm", scale=0, elem_id="logout")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat-tab"), gr.Row():
                with gr.Column(scale=1, min_width=220):
                    new_btn = gr.Button("＋ New conversation", elem_id="new-conversation")
                    conversations = gr.Radio(
                        label="Conversations", choices=[], elem_id="conversations"
                    )
                    title_box = gr.Textbox(label="Title", max_lines=1, elem_id="title")
                    with gr.Row():
                        rename_btn = gr.Button("Rename", size="sm")
                        delete_btn = gr.Button("Delete", size="sm", variant="stop")
                with gr.Column(scale=4):
                    chatbot = gr.Chatbot(
                        label="Answers",
                        height=480,
                        elem_id="chat",
                        feedback_options=("Like", "Dislike"),
                        buttons=["copy"],
                        placeholder="Ask a question about the documents — English or 中文.",
                    )
                    with gr.Row():
                        box = gr.Textbox(show_label=False, placeholder="Ask a question… 可以用中文提问",
                                         scale=8, max_lines=6, elem_id="question")  # fmt: skip
                        send = gr.Button("Send", variant="primary", scale=1, elem_id="send")
                    feedback_status = gr.Markdown(elem_id="feedback-status")
                    with gr.Group(visible=False, elem_id="feedback-details") as details:
                        reason = gr.Dropdown(
                            choices=list(FEEDBACK_REASONS), label="Reason", elem_id="reason"
                        )
                        comment = gr.Textbox(
                            label="Comment (optional)", max_lines=3, elem_id="comment"
                        )
                        feedback_btn = gr.Button("Send feedback", elem_id="send-feedback")
                    with gr.Row(elem_id="recommendations"):  # suggestions after an answer
                        chips = [gr.Button(visible=False, size="sm", scale=0, elem_id=f"chip-{i}",
                                           elem_classes="chip") for i in range(n_chips)]  # fmt: skip
                    reask_btn = gr.Button("↺ Re-ask without personalisation", size="sm",
                                          visible=False, elem_id="reask")  # fmt: skip
                    with gr.Accordion("Why this answer?", open=False, elem_id="why"):
                        why = gr.Markdown(trace_markdown(None))
            with gr.Tab("My documents", id="documents-tab"):
                gr.Markdown(f"Upload {' '.join(ALLOWED_SUFFIXES)} files (up to "
                            f"{context.container.settings.web.max_upload_mb:g} MB). They are indexed "
                            "for you only and used in your answers.")  # fmt: skip
                upload = gr.File(
                    label="Document", file_types=list(ALLOWED_SUFFIXES), elem_id="upload"
                )
                upload_status = gr.Markdown(elem_id="upload-status")
                docs_table = gr.Dataframe(headers=["title", "file", "language", "passages", "added"],
                                          interactive=False, elem_id="my-documents")  # fmt: skip
                with gr.Row():
                    doc_pick = gr.Dropdown(label="Document", choices=[], scale=3)
                    doc_delete = gr.Button("Delete document", variant="stop", scale=1)
            with gr.Tab("Profile", id="profile-tab") as profile_tab:
                profile_status = gr.Markdown(elem_id="profile-status")
                personalised = gr.Checkbox(label="Personalise my answers", elem_id="personalise")
                interests = gr.Dataframe(headers=ui_profile.INTEREST_HEADERS, interactive=False,
                                         label="What I learned you are interested in",
                                         wrap=True, elem_id="interests")  # fmt: skip
                with gr.Row():
                    interest_pick = gr.Dropdown(label="Interest", choices=[], scale=3,
                                                elem_id="interest-pick")  # fmt: skip
                    weight = gr.Slider(-profile.WEIGHT_MAX, profile.WEIGHT_MAX, value=0, step=0.5,
                                       scale=3, label="Weight", elem_id="interest-weight")  # fmt: skip
                    weight_btn = gr.Button("Save weight", scale=1, elem_id="save-weight")
                    forget_btn = gr.Button("Delete interest", variant="stop", scale=1,
                                           elem_id="delete-interest")  # fmt: skip
                with gr.Row():
                    language = gr.Dropdown(ui_profile.LANGUAGE_CHOICES, label="Answer language",
                                           elem_id="fact-language")  # fmt: skip
                    level = gr.Dropdown(ui_profile.LEVEL_CHOICES, label="My level",
                                        elem_id="fact-level")  # fmt: skip
                    style = gr.Dropdown(ui_profile.STYLE_CHOICES, label="Answer style",
                                        elem_id="fact-style")  # fmt: skip
                    persona = gr.Textbox(label="About me (e.g. nurse, 学生)", max_lines=1,
                                         max_length=profile.PERSONA_MAX, elem_id="fact-persona")  # fmt: skip
                facts_btn = gr.Button("Save preferences", elem_id="save-facts")
                with gr.Row():
                    gr.Button("⬇ Export my data (JSON)", link="/api/me/export", elem_id="export")
                    reset_btn = gr.Button("Reset profile", elem_id="reset-profile")
                    erase_btn = gr.Button("Delete my account and data…", variant="stop",
                                          elem_id="delete-account")  # fmt: skip
                with gr.Column(visible=False, elem_id="confirm-delete") as confirm:
                    gr.Markdown("**Delete your account?** Your conversations, ratings, profile "
                                "and uploaded documents are erased for good.")  # fmt: skip
                    with gr.Row():
                        # handled by static/ui.js: DELETE /api/me, then the sign-in page
                        gr.Button("Yes, delete everything", elem_id="confirm-delete-yes")
                        erase_no = gr.Button("Cancel", elem_id="confirm-delete-no")
            with gr.Tab("Admin", id="admin-tab", visible=False) as admin_tab:
                with gr.Row():
                    refresh_btn = gr.Button("Refresh", scale=0)
                    reingest_btn = gr.Button("Re-ingest data/samples", scale=0)
                ingest_status = gr.Markdown()
                stats = gr.JSON(label="Store and queue")
                public_docs = gr.Dataframe(headers=["title", "file", "language", "passages", "category"],
                                           label="Public documents", interactive=False)  # fmt: skip
                summary = gr.Markdown(elem_id="admin-summary")
                with gr.Row():
                    plot_time = gr.Plot(label="Satisfaction over time", show_label=False)
                    plot_docs = gr.Plot(label="By document", show_label=False)
                with gr.Row():
                    reasons = gr.Dataframe(headers=["reason", "count"], label="👎 reasons")
                    refused = gr.Dataframe(
                        headers=["when", "question"],
                        label='Answered "I don\'t know"',
                        elem_id="refused",
                    )
                with gr.Accordion("Latest evaluation report", open=False):
                    report = gr.Markdown()

        demo.load(on_load, outputs=[who, conversations, admin_tab, docs_table, doc_pick, state])
        tail = [*chips, reask_btn]
        chat_out = [chatbot, box, state, conversations, why, details, *tail]
        gr.on([box.submit, send.click], respond, [box, state], chat_out,
              concurrency_limit=None, api_visibility="private")  # fmt: skip
        reask_btn.click(reask, [state], chat_out, concurrency_limit=None, api_visibility="private")
        for i, chip in enumerate(chips):
            chip.click(chip_text(i), [state], [box]).success(
                respond, [box, state], chat_out, concurrency_limit=None, api_visibility="private"
            )
        conversations.input(open_conversation, [conversations],
                            [chatbot, state, title_box, why, *tail])  # fmt: skip
        new_btn.click(new_conversation, outputs=[chatbot, state, conversations, title_box, *tail])
        rename_btn.click(rename, [state, title_box], [conversations])
        delete_btn.click(delete, [state], [chatbot, state, conversations, title_box, *tail])
        chatbot.select(show_why, [state], [why])
        chatbot.like(on_like, [state], [details, feedback_status, state])
        feedback_btn.click(send_feedback, [state, reason, comment],
                           [details, feedback_status, reason, comment])  # fmt: skip
        upload.upload(on_upload, [upload], [upload, upload_status, docs_table, doc_pick])
        doc_delete.click(delete_document, [doc_pick], [upload_status, docs_table, doc_pick])
        admin_out = [stats, public_docs, summary, plot_time, plot_docs, reasons, refused, report]
        refresh_btn.click(admin_refresh, outputs=admin_out)
        admin_tab.select(admin_refresh, outputs=admin_out)
        reingest_btn.click(admin_reingest, outputs=[ingest_status])
        profile_out = [profile_status, personalised, interests, interest_pick, weight,
                       language, level, style, persona]  # fmt: skip
        profile_tab.select(show_profile, outputs=profile_out)
        personalised.input(set_personalised, [personalised], profile_out)
        interest_pick.input(pick_interest, [interest_pick], [weight])
        weight_btn.click(save_weight, [interest_pick, weight], profile_out)
        forget_btn.click(forget_interest, [interest_pick], profile_out)
        facts_btn.click(save_facts, [language, level, style, persona], profile_out)
        reset_btn.click(reset_profile, outputs=profile_out)
        erase_btn.click(lambda: gr.update(visible=True), outputs=[confirm])
        erase_no.click(lambda: gr.update(visible=False), outputs=[confirm])
    blocks: gr.Blocks = demo
    return blocks


def mount_ui(app: FastAPI, context: WebContext) -> FastAPI:
    """Mount the UI at /ui behind our session cookie (Gradio's own auth stays off)."""
    settings = context.container.settings

    async def signed_in(request: Request) -> str | None:
        token = request.cookies.get(SESSION_COOKIE)
        principal = await anyio.to_thread.run_sync(session_principal, context, token)
        return principal.user_id if principal is not None else None

    demo = build_ui(context)
    demo.queue(max_size=64, default_concurrency_limit=8)
    mounted: FastAPI = gr.mount_gradio_app(
        app,
        demo,
        path="/ui",
        auth_dependency=signed_in,
        allowed_paths=[],
        blocked_paths=[str(settings.data_dir.resolve()), str(context.project_root / "data")],
        max_file_size=f"{int(settings.web.max_upload_mb)}mb",
        enable_monitoring=False,
        footer_links=[],
        run_history=False,
        ssr_mode=False,
        mcp_server=False,
        pwa=False,
        show_error=True,
        theme=gr.themes.Soft(font=FONTS, font_mono=["ui-monospace", "monospace"]),
        css_paths=[STATIC_DIR / "ui.css"],
        head=HEAD,
    )
    return mounted
