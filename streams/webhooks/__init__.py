"""Standard Webhooks in and out of a node (docs/webhooks.md).

- :mod:`.signing`: secrets (files like the edge token), signing and verifying the
  ``webhook-id`` / ``webhook-timestamp`` / ``webhook-signature`` headers.
- :mod:`.inbound`: ``POST /webhooks/{source}`` turning a signed call into an event.
- :mod:`.mapping`: payloads to events (a STAC item becomes a ``SceneAnnounced``).
- :mod:`.seen`: the webhook-ids already published (idempotency across restarts).
"""
