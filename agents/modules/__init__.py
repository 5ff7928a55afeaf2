"""Modules: versioned blocks of work (``name@version``) that workflows chain.

A module has input and output JSON schemas, a description, an author, a lifecycle
(draft, published, deprecated) and provenance. Built-in agents are modules
(:mod:`.builtin`), two pre-built models ship (:mod:`.downscale`, :mod:`.flood`), and
packages add their own through the ``gravitas.modules`` entry-point group
(:mod:`.entrypoints`). The node's registry (:mod:`.registry`) holds signed records.
"""
