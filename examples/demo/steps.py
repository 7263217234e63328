"""The steps of the helpdesk triage demo, registered in agentbridge's default registry.

``workflow.yaml`` runs them as ``fetch -> (customers | duplicates | categories) -> triage``:

* ``fetch_tickets`` and ``lookup_customers``: async tools that talk to the helpdesk
  service (a loopback server, see ``_helpdesk.py``) over TCP, on the run's event loop;
  the customer lookups of one step run concurrently.
* ``find_duplicates``: a blocking, CPU-bound function (MinHash over word pairs), so
  the runtime runs it in a worker thread while the async steps keep going.
* ``categorise``: a small blocking function with keyword rules.
* ``triage_agent``: a rule-based agent (an object with an async ``run``) that joins the
  three and decides what to do with each ticket. No network, no model.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from typing import Any

import anyio
from anyio.streams.buffered import BufferedByteReceiveStream

import agentbridge as ab

from . import _helpdesk

__all__ = ("TriageAgent", "categorise", "fetch_tickets", "find_duplicates", "lookup_customers")

Ticket = dict[str, Any]


async def _request(**request: object) -> Any:
    """Send one request to the helpdesk service and return its ``data``."""
    host, port = _helpdesk.address()
    async with await anyio.connect_tcp(host, port) as stream:
        await stream.send(json.dumps(request).encode() + b"\n")
        line = await BufferedByteReceiveStream(stream).receive_until(b"\n", 1 << 20)
    reply = json.loads(line)
    if "error" in reply:
        raise LookupError(f"helpdesk service: {reply['error']}")
    return reply["data"]


@ab.tool("fetch_tickets")
async def fetch_tickets(queue: str, limit: int) -> list[Ticket]:
    """The open tickets of ``queue``, at most ``limit``."""
    tickets: list[Ticket] = await _request(get="tickets", queue=queue, limit=limit)
    return tickets


@ab.tool("lookup_customers")
async def lookup_customers(tickets: list[Ticket]) -> dict[str, dict[str, Any]]:
    """The account of every customer with a ticket, looked up concurrently."""
    customers: dict[str, dict[str, Any]] = {}

    async def lookup(customer_id: str) -> None:
        customers[customer_id] = await _request(get="customer", id=customer_id)

    async with anyio.create_task_group() as group:
        for customer_id in sorted({ticket["customer"] for ticket in tickets}):
            group.start_soon(lookup, customer_id)
    return dict(sorted(customers.items()))


_WORD = re.compile(r"[a-z0-9]+")


def _shingles(text: str, size: int = 2) -> set[str]:
    words = _WORD.findall(text.lower())
    return {" ".join(words[i : i + size]) for i in range(max(1, len(words) - size + 1))}


def _salted_hash(item: bytes, seed: int) -> bytes:
    return hashlib.blake2b(item, digest_size=8, salt=seed.to_bytes(16, "big")).digest()


def _signature(shingles: set[str], permutations: int) -> list[int]:
    """A MinHash signature: the smallest salted hash of any shingle, per permutation."""
    encoded = [shingle.encode() for shingle in shingles]
    return [
        min(int.from_bytes(_salted_hash(item, seed), "big") for item in encoded)
        for seed in range(permutations)
    ]


@ab.function("find_duplicates")
def find_duplicates(
    tickets: list[Ticket], threshold: float = 0.35, permutations: int = 2048
) -> list[list[str]]:
    """Pairs of tickets whose texts are near duplicates: ``[[earlier, later], ...]``.

    The estimated Jaccard similarity of their word pairs (2-shingles) is at least ``threshold``.
    Pure CPU work: the runtime runs this blocking function in a worker thread.
    """
    signatures = [
        (ticket["id"], _signature(_shingles(f"{ticket['subject']} {ticket['body']}"), permutations))
        for ticket in tickets
    ]
    pairs = []
    for i, (first, first_signature) in enumerate(signatures):
        for second, second_signature in signatures[i + 1 :]:
            same = sum(a == b for a, b in zip(first_signature, second_signature, strict=True))
            if same / permutations >= threshold:
                pairs.append([first, second])
    return pairs


_CATEGORIES = (
    ("outage", ("down", "502", "outage", "blocked", "unavailable")),
    ("billing", ("charged", "invoice", "refund", "payment", "vat")),
    ("account", ("password", "log in", "login", "invite", "sign-on")),
    ("bug", ("missing", "error", "drops", "loses", "wrong")),
)


@ab.function("categorise")
def categorise(tickets: list[Ticket]) -> dict[str, str]:
    """A category per ticket id, from the first keyword rule that matches."""
    categories = {}
    for ticket in tickets:
        text = f"{ticket['subject']} {ticket['body']}".lower()
        categories[ticket["id"]] = next(
            (name for name, words in _CATEGORIES if any(word in text for word in words)),
            "question",
        )
    return categories


class TriageAgent:
    """Decides an action for each ticket, the way a first-line support lead would.

    Rules, in order: a near duplicate is merged into the earlier ticket; an outage of an
    enterprise customer pages the on-call engineer; other outages and bugs are filed for
    engineering; billing goes to the billing team; anything else gets a help-centre answer.
    """

    async def run(
        self,
        tickets: list[Ticket],
        customers: dict[str, dict[str, Any]],
        categories: dict[str, str],
        duplicates: list[list[str]],
    ) -> dict[str, Any]:
        """The action per ticket, the escalations, and a one-line summary."""
        merged_into = {later: earlier for earlier, later in duplicates}
        actions, outcomes = {}, Counter[str]()
        for ticket in tickets:
            outcome, action = self._decide(
                ticket, customers[ticket["customer"]], categories[ticket["id"]], merged_into
            )
            actions[ticket["id"]] = action
            outcomes[outcome] += 1
        counts = ", ".join(f"{outcomes[name]} {name}" for name in _OUTCOMES if outcomes[name])
        return {
            "actions": actions,
            "escalations": [ticket_id for ticket_id in actions if "on-call" in actions[ticket_id]],
            "summary": f"{len(tickets)} tickets: {counts}",
        }

    @staticmethod
    def _decide(
        ticket: Ticket, customer: dict[str, Any], category: str, merged_into: dict[str, str]
    ) -> tuple[str, str]:
        """The outcome (one of ``_OUTCOMES``) and the action for one ticket."""
        if ticket["id"] in merged_into:
            return "merged", f"merge into {merged_into[ticket['id']]}"
        if category == "outage" and customer["tier"] == "enterprise":
            return "escalated", f"page on-call: {customer['name']} reports an outage"
        if category in {"outage", "bug"}:
            return "to engineering", f"file a {category} report for engineering"
        if category == "billing":
            return "to billing", "route to the billing team"
        return "answered", f"answer from the help centre ({category})"


_OUTCOMES = ("escalated", "merged", "to engineering", "to billing", "answered")

ab.get_default_registry().register("agent", "triage_agent", TriageAgent())
