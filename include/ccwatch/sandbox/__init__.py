"""The local API double: GitHub REST v3, Jira REST v2/v3 and the Slack Web API served from a scenario.

    from ccwatch.sandbox import SandboxServer, load_scenario

    with SandboxServer("include/demo/scenario.json") as sandbox:
        Github(auth=Auth.Token("ghp_demo"), base_url=sandbox.url)
        ...
        sandbox.requests        # [{"method", "path", "query", "status", "service"}]
        sandbox.slack_messages  # decoded chat.postMessage payloads

See docs/SANDBOX.md for the scenario format and the served endpoints.
"""

from ccwatch.sandbox.http import SandboxRequest, SandboxResponse
from ccwatch.sandbox.server import PortHold, SandboxServer, load_scenario

__all__ = ["PortHold", "SandboxRequest", "SandboxResponse", "SandboxServer", "load_scenario"]
