"""A project's alarm webhook over REST (the project's leads, admins)."""

from __future__ import annotations

from flask import jsonify
from flask.typing import ResponseReturnValue

from federica.aaa.policy import Action
from federica.alarms import webhooks
from federica.web.api import api
from federica.web.api.models import WebhookRequest, parse_body
from federica.web.api.openapi import OBJECTS, document
from federica.web.auth import guard, note, require
from federica.web.context import ctx, read_session, write_session
from federica.web.targets import project_for

OBJECTS.update(
    {
        "Webhook": "project, url, set_at, set_by, deliveries (the latest 20: id, alarm_id, "
        "event raised|cleared, state pending|delivered|failed, attempts, queued_at, "
        "next_attempt_at, delivered_at, last_status, last_error); never the secret",
        "NewWebhook": "project, url, set_at, set_by, secret (HMAC-SHA256 key of the "
        "X-Federica-Signature header; in this answer only)",
    }
)


@api.put("/projects/<name>/webhook")
@document(
    "NewWebhook",
    'Set the project\'s alarm webhook (its leads, admins): {"url": "https://…"}; a new '
    "secret each time, shown in this answer only",
    param="name",
    tag="accounts",
    body="WebhookRequest",
)
@guard(Action.WEBHOOK_MANAGE, per_target=True)
def put_webhook(name: str) -> ResponseReturnValue:
    project_for(name, Action.WEBHOOK_MANAGE)
    body = parse_body(WebhookRequest)
    note(url=body.url)
    context = ctx()
    with write_session() as s:
        hook, secret = webhooks.set_webhook(
            s, name, body.url, require().username, context.now(), context.settings
        )
        out = webhooks.describe(s, hook, name)
    del out["deliveries"]
    return jsonify({**out, "secret": secret})


@api.get("/projects/<name>/webhook")
@document(
    "Webhook", "The project's alarm webhook and its latest deliveries", param="name",
    tag="accounts",
)  # fmt: skip
@guard(Action.WEBHOOK_MANAGE, per_target=True)
def show_webhook(name: str) -> ResponseReturnValue:
    project_for(name, Action.WEBHOOK_MANAGE)
    with read_session() as s:
        return jsonify(webhooks.describe(s, webhooks.get_webhook(s, name), name))


@api.delete("/projects/<name>/webhook")
@document(
    "Webhook",
    "Remove the project's alarm webhook (deliveries still queued are given up); the "
    "answer is the webhook as it was",
    param="name",
    tag="accounts",
)
@guard(Action.WEBHOOK_MANAGE, per_target=True)
def delete_webhook(name: str) -> ResponseReturnValue:
    project_for(name, Action.WEBHOOK_MANAGE)
    with write_session() as s:
        out = webhooks.describe(s, webhooks.get_webhook(s, name), name)
        webhooks.remove_webhook(s, name)
    return jsonify(out)
