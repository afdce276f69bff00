"""The runtime: from a :class:`RunConfig`, everything a command runs, decided once. It resolves
the model source, settles the backend, the modulation and the detector (the rules that tie
them together live here and nowhere else), and hands out what a command needs: the backend, the
detector, a chat session, the model as transformers loads it. Nothing loads until asked for;
every value is checked before that."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from emochat.chats import Chats
from emochat.detect import BackgroundDetector, Detector, load_detector
from emochat.emotion import EmotionVector
from emochat.engine.backends import open_backend
from emochat.engine.generation import default_reply_limit
from emochat.engine.loading import (
    DEFAULT_MODEL,
    LoadOptions,
    ModelSource,
    load_model,
    resolve_source,
)
from emochat.engine.modulation import build_modulator, choose_modulation, set_intensity
from emochat.engine.modulation.projection import shipped_embed_checkpoint
from emochat.engine.server_api import shown_url
from emochat.errors import EmochatError
from emochat.last_mood import save_last_state
from emochat.progress import Progress, no_progress
from emochat.runtime.config import RunConfig, check_config
from emochat.runtime.restore import saved_intensity, saved_sampling, starting_state
from emochat.session import ChatSession, conversation_header, start_transcript
from emochat.state import EmotionState

API_KEY_VARIABLE = "EMOCHAT_API_KEY"

if TYPE_CHECKING:
    from emochat.engine.backends.base import Backend
    from emochat.engine.backends.transformers_backend import TransformersBackend
    from emochat.engine.generation import SamplingSettings
    from emochat.engine.loading import LoadedModel
    from emochat.engine.modulation.loop import SteeringLoop
    from emochat.engine.server_api import ServerAPI
    from emochat.transcripts import Conversation


class Runtime:
    def __init__(
        self, config: RunConfig, progress: Progress = no_progress, warn: Progress | None = None
    ) -> None:
        """``progress`` hears what loading does; ``warn`` what the user should know (by
        default, ``progress`` too)."""
        check_config(config)
        self.config = config
        self._progress = progress
        self._warn = warn or progress
        self._settled: tuple[ModelSource, str] | None = None
        if config.uses_model:
            self._settle_model()  # a missing model is said now, before anything loads
        self.load_options = LoadOptions(
            quant=config.model.quant,
            device=config.model.device,
            dtype=config.model.dtype,
            threads=config.model.threads,
            backend=self._backend_choice(),
        )
        self._backend: Backend | None = None
        self._detector: Detector | None = None
        self._sampling: SamplingSettings | None = None

    def _settle_model(self) -> tuple[ModelSource, str]:
        """The model's source and how the emotion reaches it, settled once."""
        if self._settled is None and self.config.model.on_server:
            self._settled = self._settle_server()
        if self._settled is None:
            source = resolve_source(self.config.model.model)
            modulation = choose_modulation(self.config.generation.modulation, source)
            if modulation == "embed":  # a model that ships a trained projection loads with it
                shipped = shipped_embed_checkpoint(source)
                if shipped is not None:
                    source = replace(resolve_source(str(shipped)), requested=source.requested)
            self._settled = (source, modulation)
        return self._settled

    def _settle_server(self) -> tuple[ModelSource, str]:
        """A model on a server: named as the server names it; ``auto`` is the persona prompt,
        or steering where the server steers per request."""
        model, requested = self.config.model, self.config.generation.modulation
        if model.model == DEFAULT_MODEL:
            raise EmochatError(
                "name the server's model: --model NAME (emochat models --base-url URL)"
            )
        if requested == "embed":
            raise EmochatError(
                "embedding modulation runs in process; a server takes steer or prompt"
            )
        source = ModelSource(
            "server", shown_url(model.base_url or ""), model.model, requested=model.model
        )
        if requested == "auto":
            requested = "steer" if model.steering != "none" else "prompt"
        if requested in ("steer", "both") and model.steering == "none":
            from emochat.engine.backends.openai_backend import NOT_STEERABLE

            raise EmochatError(NOT_STEERABLE)
        return source, requested

    @property
    def source(self) -> ModelSource:
        return self._settle_model()[0]

    @property
    def modulation(self) -> str:
        return self._settle_model()[1]

    def _backend_choice(self) -> str:
        """The backend asked for; the probe detector reads hidden states, which only the
        transformers backend exposes, so ``auto`` takes that one for it."""
        backend = self.config.model.backend
        if self.config.detector != "probe":
            return backend
        if backend in ("llama.cpp", "openai"):
            raise EmochatError(
                "the probe detector reads hidden states through transformers: "
                "use --backend transformers or another --detector"
            )
        return "transformers"

    # ------------------------------------------------------------ what runs
    def backend(self, build_behind: bool = False) -> Backend:
        """The model on its backend, with the modulator the configuration says (loaded once).
        ``build_behind``: directions a model lacks are built while it answers unsteered, where
        the backend can (the app), not before it answers."""
        if self._backend is None:
            generation = self.config.generation
            if self.config.model.on_server:
                backend = self._server_backend()
            else:
                backend = open_backend(self.source, self.load_options, self._progress)
            if self.source.unused_settings:
                self._warn(
                    f"{self.source.display_name}'s settings emochat does not use: "
                    + ", ".join(self.source.unused_settings)
                )
            backend.use(
                build_modulator(
                    self.modulation,
                    backend,
                    generation.intensity,
                    generation.build_directions,
                    self._progress,
                    build_behind,
                )
            )
            self._backend = backend
        return self._backend

    def _server_backend(self) -> Backend:
        from emochat.engine.backends.openai_backend import OpenAIBackend

        model = self.config.model
        return OpenAIBackend.connect(
            self.server_api(),
            model.model,
            model.server_context,
            self._progress,
            model.steering_vectors,
        )

    def server_api(self) -> ServerAPI:
        """The configured server's API; its key from the environment only (the variable the
        profile names, else EMOCHAT_API_KEY): never a flag, never written anywhere."""
        import os

        from emochat.engine.server_api import ServerAPI

        model = self.config.model
        key = os.environ.get(model.api_key_env or API_KEY_VARIABLE) or None
        return ServerAPI(model.base_url or "", key, model.timeout)

    def detector(self, background: bool = False) -> Detector:
        """The configured detector (loaded once). ``background`` loads it in a thread beside
        the model, so only the first message waits for it; the probe reads the chat model and
        so always waits for it."""
        name = self.config.detector
        if name is None:
            raise EmochatError("this command reads no messages")
        if self._detector is None:
            if name == "probe":
                # _backend_choice made it the transformers backend
                backend = cast("TransformersBackend", self.backend())
                self._detector = load_detector(name, backend)
            elif background:
                self._detector = BackgroundDetector(
                    name, lambda: load_detector(name, progress=self._progress), self._progress
                )
            else:
                self._detector = load_detector(name, progress=self._progress)
        return self._detector

    def training_model(self) -> LoadedModel:
        """The model to train on: float32 on the CPU, bfloat16 on CUDA, NF4 (QLoRA) there when
        the quantization says 4bit."""
        device, quant = self.config.model.device, self.config.model.quant
        if device == "auto":
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        if quant == "4bit" and not device.startswith("cuda"):
            raise EmochatError("--quant 4bit (QLoRA) needs a CUDA GPU; on the CPU train with none")
        options = replace(
            self.load_options,
            device=device,
            dtype="float32" if device == "cpu" else "bfloat16",
        )
        loaded = load_model(self.source, options, self._progress)
        if quant == "4bit":
            from peft import prepare_model_for_kbit_training

            loaded.model = prepare_model_for_kbit_training(loaded.model)
        return loaded

    def sampling(self) -> SamplingSettings:
        """The sampling settings, with the reply limit (``auto`` by default) fitted to the
        model's context: a limit that would leave the prompt no room is capped at half (said
        once)."""
        if self._sampling is not None:
            return self._sampling
        info = self.backend().info
        limit = self.config.generation.max_new_tokens
        model_defaults = self.source.sampling_defaults
        if limit == "auto":
            limit = model_defaults.get("max_new_tokens") or default_reply_limit(info.context_length)
            limit = min(limit, max(1, info.context_length // 2))
        elif limit > info.context_length // 2:
            capped = max(1, info.context_length // 2)
            self._warn(
                f"--max-new-tokens {limit} would leave the prompt little or no room in "
                f"{info.name}'s context of {info.context_length} tokens; using {capped}"
            )
            limit = capped
        self._sampling = self.config.generation.sampling(limit, model_defaults)
        return self._sampling

    @property
    def system_prompt(self) -> str | None:
        """The system prompt asked for, else the model's own (Ollama's system layer)."""
        asked = self.config.generation.system_prompt
        return asked if asked is not None else self.source.system_prompt

    # ------------------------------------------------------------- sessions
    def _header(
        self, state: EmotionState, settings: SamplingSettings, source: str
    ) -> dict[str, Any]:
        backend, generation = self.backend(), self.config.generation
        return conversation_header(
            backend.info,
            modulation=backend.modulator.name,
            intensity=generation.intensity,
            detector=self.config.detector if source == "chat" else None,
            state=state,
            settings=settings,
            source=source,
            system_prompt=self.system_prompt,
        )

    def chats(self, resumed: Conversation | None, progress: Progress) -> Chats:
        """Everything the app needs: the detector loading beside the model, then the chats,
        opened at ``resumed`` or a new one (in the mood ``--emotion`` asks for). Loading and
        the chats' warnings report to ``progress`` (the app's status line)."""
        self._progress = self._warn = progress
        self.detector(background=True)
        self.backend(build_behind=True)
        first = self.session_for(resumed, emotion=self.config.generation.emotion)
        return Chats(self.session_for, first)

    def session_for(
        self, conversation: Conversation | None, emotion: EmotionVector | None = None
    ) -> ChatSession:
        """A chat session: ``conversation`` reopened with its own settings, or a new chat."""
        backend, generation = self.backend(), self.config.generation
        settings = self.sampling()
        state = starting_state(self.config.policy, emotion, conversation)
        system_prompt = self.system_prompt
        if conversation is None:
            header = self._header(state, settings, "chat")
        else:
            header = conversation.header
            settings = saved_sampling(conversation, settings)
            saved_system = header.get("system_prompt")
            system_prompt = saved_system if isinstance(saved_system, str) else None
        set_intensity(backend.modulator, saved_intensity(header, generation.intensity))
        transcript = start_transcript(header, self._warn, resume=conversation)
        read_back = self._read_back_detector(background=True)
        return ChatSession(
            backend,
            self.detector(background=True),
            state,
            transcript,
            settings,
            warn=self._warn,
            system_prompt=system_prompt,
            on_state_change=save_last_state,
            read_back=read_back,
            loop=self._steering_loop(read_back),
        )

    def say_session(self, transcript: Path | None, save: bool) -> ChatSession:
        """A session for one-shot replies: the prompt not read, the mood locked at
        ``--emotion``, each prompt answered on its own and each reply read back (unless that is
        off); saved to ``transcript`` (or a new file) unless not ``save``."""
        backend, generation = self.backend(), self.config.generation
        settings = self.sampling()
        emotion = generation.emotion if generation.emotion is not None else EmotionVector()
        state = EmotionState(vector=emotion, policy="locked")
        header = self._header(state, settings, "say")
        writer = start_transcript(header, self._warn, path=transcript, save=save, deferred=False)
        # loaded before the reply streams: a load silences Python's stdout and stderr for
        # its moment (llama_process), which would swallow what say prints meanwhile
        read_back = self._read_back_detector(background=False)
        return ChatSession(
            backend,
            None,
            state,
            writer,
            settings,
            self._warn,
            system_prompt=self.system_prompt,
            remember=False,
            read_back=read_back,
            loop=self._steering_loop(read_back),
        )

    def _steering_loop(self, detector: Detector | None) -> SteeringLoop | None:
        """The steering loop, where it is on and can act: it reads with the read-back detector
        and re-steers steering done here (a server's reply cannot be changed half-way)."""
        if not self.config.generation.steering_loop or detector is None:
            return None
        if self.config.model.on_server or self.backend().modulator.name not in ("steer", "both"):
            return None
        from emochat.engine.modulation.loop import SteeringLoop

        return SteeringLoop(lambda text: detector.read(text).vector)

    def _read_back_detector(self, background: bool) -> Detector | None:
        """The detector that reads replies back, if it is on (``background``: loading beside
        the model, for the app)."""
        if not self.config.read_back or self.config.detector is None:
            return None
        return self.detector(background=background)
