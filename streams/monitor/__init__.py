"""Watch a node's pipeline: topic rates and lag, recent events, dead letters, running
requests (:mod:`.snapshot`), drawn live in a terminal (:mod:`.view`) or streamed to the
web page (:mod:`gravitas.streams.web.live`)."""
