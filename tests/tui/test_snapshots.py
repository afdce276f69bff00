"""What the app looks like, in the default (dark) and the light theme, at the smallest size it
promises to be readable at (80×24: every axis on screen) and at a large one (160×48). The SVGs
under __snapshots__ are also the README's screenshots."""

import pytest

from emochat.emotion import EmotionVector
from emochat.state import EmotionState
from emochat.tui.widgets import AxisBar, PromptInput
from tests.fakes import FakeBackend
from tests.tui.helpers import make_app, send, settle

SIZES = {"80x24": (80, 24), "160x48": (160, 48)}
MOOD = EmotionVector((0.6, -0.3, 0, 0.9, 0, -0.8, 0.2, 0.5))
ANSWER = (
    "It is **good** to see you too. I feel calm today, and a little wary of surprises, "
    "but mostly glad you came by to talk."
)


def _app(theme: str):
    # the reply stops at the length limit, so the snapshot shows how a cut reply is marked
    return make_app(FakeBackend(answer=ANSWER, limit=18), theme=theme, state=EmotionState(MOOD))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("theme", ["emochat-dusk", "emochat-paper"])
def test_main_screen(snap_compare, theme: str, size: str) -> None:
    app = _app(theme)

    async def run_before(pilot) -> None:
        app.query_one(PromptInput).cursor_blink = False  # a blinking cursor is half the time off
        await settle(app, pilot)
        await send(app, pilot, "I am happy to see you")

    assert snap_compare(app, terminal_size=SIZES[size], run_before=run_before)


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES)
async def test_every_axis_the_status_and_the_footer_fit(size) -> None:
    app = _app("emochat-dusk")
    async with app.run_test(size=size) as pilot:
        await settle(app, pilot)
        await send(app, pilot, "I am happy to see you")
        width, height = size
        bars = list(app.query(AxisBar))
        assert len(bars) == 8
        for bar in bars:
            region = bar.region
            assert region.height >= 1 and region.bottom <= height - 2, bar.axis
            assert region.right <= width
        status = app.query_one("#status")
        assert len(str(status.render())) <= width - 2
        assert "fake-model" in str(status.render())
