"""Slack Web API double: ``/api/<method>`` with slack_sdk's request shapes.

Like Slack, every answer is HTTP 200 with ``{"ok": false, "error": ...}`` on failure
(``not_authed``, ``invalid_auth``, ``channel_not_found``, ``not_in_channel``, ``no_text``,
``unknown_method``); only rate limiting (a fault mode) answers 429 with ``Retry-After``.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from datetime import datetime

from ccwatch.sandbox.http import SandboxRequest, SandboxResponse, json_response


class SlackApi:
    def __init__(self, scenario: dict, record: Callable[[dict], None]):
        s = scenario.get("slack") or {}
        self.token = (scenario.get("auth") or {}).get("slack_token")
        self.team = s.get("team", "Acme")
        self.team_id = s.get("team_id", "T0CCWATCH")
        self.bot_user = s.get("bot_user", "ccwatch")
        self.channels: dict[str, dict] = {}
        for name, value in (s.get("channels") or {}).items():
            info = {"id": value} if isinstance(value, str) else dict(value)
            info.setdefault("member", True)
            self.channels[name.lstrip("#")] = info
        as_of = (scenario.get("meta") or {}).get("as_of")
        self.epoch = int(datetime.fromisoformat(as_of.replace("Z", "+00:00")).timestamp()) if as_of else 1_700_000_000
        self.record = record
        self._seq = 0
        self._lock = threading.Lock()

    def handle(self, req: SandboxRequest) -> SandboxResponse:
        method = req.path[len("/api/"):].strip("/")
        args = {k: v[-1] for k, v in req.query.items()}
        ctype = (req.headers.get("Content-Type") or "").lower()
        if req.body:
            try:
                args.update(req.json_body() if "json" in ctype else req.form_body())
            except (ValueError, UnicodeDecodeError):
                return json_response({"ok": False, "error": "invalid_json"})
        header = req.headers.get("Authorization") or ""
        token = header[7:].strip() if header.lower().startswith("bearer ") else str(args.pop("token", "") or "")
        args.pop("token", None)
        handler = {"auth.test": self.auth_test, "chat.postMessage": self.post_message,
                   "conversations.list": self.conversations_list}.get(method)
        if handler is None:
            return json_response({"ok": False, "error": "unknown_method", "req_method": method})
        if not token:
            return json_response({"ok": False, "error": "not_authed"})
        if self.token and token != self.token:
            return json_response({"ok": False, "error": "invalid_auth"})
        return json_response(handler(args))

    def _channel(self, ref: str) -> tuple[str, dict] | None:
        ref = (ref or "").strip()
        if ref.lstrip("#") in self.channels:
            return ref.lstrip("#"), self.channels[ref.lstrip("#")]
        return next(((n, c) for n, c in self.channels.items() if c["id"] == ref), None)

    def auth_test(self, args: dict) -> dict:
        return {"ok": True, "url": f"https://{self.team.lower()}.slack.com/", "team": self.team, "user": self.bot_user,
                "team_id": self.team_id, "user_id": "U0CCWATCH", "bot_id": "B0CCWATCH", "is_enterprise_install": False}

    def post_message(self, args: dict) -> dict:
        found = self._channel(str(args.get("channel") or ""))
        if found is None:
            return {"ok": False, "error": "channel_not_found"}
        name, info = found
        if not info.get("member", True):
            return {"ok": False, "error": "not_in_channel"}
        payload = dict(args)
        for key in ("blocks", "attachments", "metadata"):
            if isinstance(payload.get(key), str):
                try:
                    payload[key] = json.loads(payload[key])
                except ValueError:
                    return {"ok": False, "error": f"invalid_{key}"}
        if not payload.get("text") and not payload.get("blocks") and not payload.get("attachments"):
            return {"ok": False, "error": "no_text"}
        blocks = payload.get("blocks")
        if isinstance(blocks, list) and len(blocks) > 50:
            return {"ok": False, "error": "invalid_blocks", "errors": ["must provide an array of at most 50 blocks"]}
        with self._lock:
            self._seq += 1
            ts = f"{self.epoch}.{self._seq:06d}"
        self.record(payload)
        message = {"user": "U0CCWATCH", "type": "message", "ts": ts, "bot_id": "B0CCWATCH", "app_id": "A0CCWATCH",
                   "text": payload.get("text", ""), "team": self.team_id,
                   "bot_profile": {"id": "B0CCWATCH", "app_id": "A0CCWATCH", "name": self.bot_user, "deleted": False,
                                   "team_id": self.team_id}}
        if blocks:
            message["blocks"] = blocks
        return {"ok": True, "channel": info["id"], "ts": ts, "message": message}

    def conversations_list(self, args: dict) -> dict:
        rows = []
        for name, info in self.channels.items():
            rows.append({"id": info["id"], "name": name, "is_channel": True, "is_group": False, "is_im": False,
                         "is_mpim": False, "is_private": bool(info.get("private", False)), "created": self.epoch,
                         "is_archived": False, "is_general": False, "unlinked": 0, "name_normalized": name,
                         "is_shared": False, "is_org_shared": False, "is_pending_ext_shared": False, "pending_shared": [],
                         "context_team_id": self.team_id, "updated": self.epoch * 1000, "parent_conversation": None,
                         "creator": "U0CCWATCH", "is_ext_shared": False, "shared_team_ids": [self.team_id],
                         "pending_connected_team_ids": [], "is_member": bool(info.get("member", True)),
                         "topic": {"value": "", "creator": "", "last_set": 0},
                         "purpose": {"value": "", "creator": "", "last_set": 0}, "previous_names": [], "num_members": 1})
        try:
            limit = min(max(int(args.get("limit") or 100), 1), 1000)
            start = int(base64.b64decode(args["cursor"]).decode().split(":", 1)[1]) if args.get("cursor") else 0
        except (ValueError, IndexError):
            return {"ok": False, "error": "invalid_cursor"}
        page = rows[start:start + limit]
        nxt = base64.b64encode(f"offset:{start + limit}".encode()).decode() if start + limit < len(rows) else ""
        return {"ok": True, "channels": page, "response_metadata": {"next_cursor": nxt}}

