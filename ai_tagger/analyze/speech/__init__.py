"""Speech: what a scene's sound says, as text the vision model reads with the frames.

A :class:`~ai_tagger.analyze.speech.base.Transcriber` turns a clip (:mod:`ai_tagger.media.audio`) into
text: through the gateway's ``/audio/transcriptions`` (:mod:`.gateway`) or in this process with
faster-whisper (:mod:`.local`, ``asrModel: local``). :class:`~ai_tagger.analyze.speech.service.Speech`
is what a run uses: cache, extraction, one transcription per scene with sound, and failures
that degrade to frames alone.
"""
