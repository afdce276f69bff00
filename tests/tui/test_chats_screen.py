"""The chat list (F2): every saved chat, a filter that searches them, open, new, rename,
delete with confirmation."""

from textual.widgets import DataTable, Input

from emochat.transcripts import read_transcript, transcripts_dir
from emochat.tui.chats_screen import ChatsScreen
from emochat.tui.dialogs import ConfirmScreen, TextScreen
from tests.tui.helpers import SIZE, make_app, saved_chat, send, settle, shown_exchanges


def rows(app) -> list[str]:
    table = app.screen.query_one(DataTable)
    return [str(table.get_row_at(index)[0]) for index in range(table.row_count)]


async def open_list(app, pilot) -> None:
    await pilot.press("f2")
    await settle(app, pilot)
    assert isinstance(app.screen, ChatsScreen)


async def test_the_list_shows_saved_chats_with_titles_and_filters_by_any_message() -> None:
    saved_chat(["Where do whales sleep?", "and dolphins?"])
    saved_chat(["Plan my garden"])
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await open_list(app, pilot)
        assert sorted(rows(app)) == ["Plan my garden", "Where do whales sleep?"]
        table = app.screen.query_one(DataTable)
        turns = {str(table.get_row_at(i)[0]): str(table.get_row_at(i)[2]) for i in range(2)}
        assert turns == {"Where do whales sleep?": "2", "Plan my garden": "1"}
        await pilot.press(*"dolphin")
        await settle(app, pilot)
        assert rows(app) == ["Where do whales sleep?  · and dolphins?"]
        app.screen.query_one(Input).value = "nothing like this"
        await settle(app, pilot)
        assert rows(app) == ["(none match)"]


async def test_opening_a_chat_from_the_list_shows_it_and_continues_it() -> None:
    first = saved_chat(["Where do whales sleep?"])
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await send(app, pilot, "a message in the new chat")
        await open_list(app, pilot)
        titles = rows(app)
        table = app.screen.query_one(DataTable)
        table.move_cursor(row=titles.index("Where do whales sleep?"))
        table.focus()
        await pilot.press("enter")
        await settle(app, pilot)
        assert not isinstance(app.screen, ChatsScreen)
        assert app.session.id == first.id
        assert [p for p, _ in shown_exchanges(app)] == ["Where do whales sleep?"]
        assert app.sub_title == "Where do whales sleep?"
        await send(app, pilot, "and why?")
        assert read_transcript(first.path).turns() == 2
        # the model read the opened chat's history
        messages, _ = app.fake_backend.calls[-1]
        assert [m["content"] for m in messages[:1]] == ["Where do whales sleep?"]


async def test_ctrl_n_starts_a_new_chat_and_keeps_the_old_one() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await send(app, pilot, "the first chat")
        old = app.session.transcript_path
        await pilot.press("ctrl+n")
        await settle(app, pilot)
        assert app.session.transcript_path != old
        assert shown_exchanges(app) == []
        assert app.query("#hint")
        assert read_transcript(old).turns() == 1
        assert len(list(transcripts_dir().glob("*.jsonl"))) == 1  # the new one waits for words


async def test_rename_gives_a_chat_a_title() -> None:
    saved_chat(["Plan my garden"])
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await open_list(app, pilot)
        await pilot.press("f2")
        await pilot.pause()
        assert isinstance(app.screen, TextScreen)
        app.screen.query_one(Input).value = "Garden plans 2027"
        await pilot.press("enter")
        await settle(app, pilot)
        assert rows(app) == ["Garden plans 2027"]


async def test_delete_asks_first_and_can_be_refused() -> None:
    kept = saved_chat(["Plan my garden"])
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await open_list(app, pilot)
        await pilot.press("delete")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await settle(app, pilot)
        assert kept.path.exists() and rows(app) == ["Plan my garden"]
        await pilot.press("delete")
        await pilot.pause()
        await pilot.press("y")
        await settle(app, pilot)
        assert not kept.path.exists()
        assert rows(app) == ["(no saved chats)"]


async def test_deleting_the_open_chat_leaves_a_new_one_on_screen() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await send(app, pilot, "soon gone")
        gone = app.session.transcript_path
        await open_list(app, pilot)
        await pilot.press("delete")
        await pilot.pause()
        await pilot.press("y")
        await settle(app, pilot)
        await pilot.press("escape")
        await settle(app, pilot)
        assert not gone.exists()
        assert app.session.transcript_path != gone
        assert shown_exchanges(app) == []
