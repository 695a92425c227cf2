"""A separate process acting on the shared database, for the crash and concurrency tests.

    python -m tests.dispatch.worker COMMAND DATABASE_URL MEDIA START_AT JSON

``crash``: submit the report JSON, print ``ACK <answer>`` and kill itself with SIGKILL.
``act``: at START_AT (epoch seconds) try ``action`` (a lifecycle action with ``fields``, or
``whistle``, summoning ``departments``) as ``role`` on each order id in ``orders``; print each
outcome: ``done``, ``conflict`` or ``refused`` (not allowed in the order's state by then).
``submit``: at START_AT submit the report JSON; print the answer.
``redeem``: at START_AT redeem the item ``item_id`` for ``user_id`` (JSON); print ``redeemed``
or ``refused``.
``deliver``: at START_AT deliver the outbox to the webhook ``url`` at time ``now``, ``limit``
events a round, until nothing is due; print how many it delivered. With ``die`` it kills itself
with SIGKILL on the first send instead, its events claimed and not recorded.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from datetime import datetime
from pathlib import Path

from dispatch.catalogue import load_catalogue
from dispatch.errors import Conflict, IllegalTransition
from dispatch.notify import Notifier, WebhookNotifier, deliver_outbox
from dispatch.services import Actor, Service
from dispatch.storage import Database
from dispatch.supermarket import Supermarket


class Dying(Notifier):
    """A deliverer that dies as it sends."""

    def send(self, payload: dict) -> None:
        os.kill(os.getpid(), signal.SIGKILL)


def deliver(service, data) -> int:
    notifier = Dying() if data.get("die") else WebhookNotifier(data["url"], timeout=10)
    now, sent = datetime.fromisoformat(data["now"]), 0
    while True:
        done = deliver_outbox(service.db, notifier, now, limit=data["limit"])
        sent += done["delivered"]
        if done == {"delivered": 0, "failed": 0}:
            return sent


def act(service, data, order_id) -> str:
    actor = Actor(f"worker-{os.getpid()}", data["role"])
    try:
        if data["action"] == "whistle":
            service.blow_whistle(order_id, data["departments"], 30, actor)
        else:
            service.act(order_id, data["action"], actor, **data.get("fields", {}))
    except Conflict:
        return "conflict"
    except IllegalTransition:
        return "refused"
    return "done"


def main(command, url, media, start_at, payload):
    service = Service(Database(url), load_catalogue(), Path(media))
    if command != "deliver":
        service.active_resolver()  # build the index before the race starts
    data = json.loads(payload)
    time.sleep(max(0.0, float(start_at) - time.time()))
    if command == "crash":
        answer = service.submit_report(data)
        print("ACK " + json.dumps(answer), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    elif command == "act":
        print(json.dumps([act(service, data, order_id) for order_id in data["orders"]]),
              flush=True)
    elif command == "submit":
        print(json.dumps(service.submit_report(data)), flush=True)
    elif command == "redeem":
        try:
            Supermarket(service).redeem(data["user_id"], data["item_id"], 1,
                                        Actor(f"worker-{os.getpid()}", "reporter"))
            print(json.dumps("redeemed"), flush=True)
        except Conflict:
            print(json.dumps("refused"), flush=True)
    elif command == "deliver":
        print(json.dumps(deliver(service, data)), flush=True)
    service.db.dispose()


if __name__ == "__main__":
    main(*sys.argv[1:])
