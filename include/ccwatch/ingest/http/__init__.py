"""HTTP plumbing shared by the GitHub and Jira fetches: retries, the rate budget, URLs, paging."""
