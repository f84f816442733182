"""Stage 5, the auditor's tools: a reproducible sample of a period with its evidence packet
(``sampling``, ``packet``, ``packet_html``) and the quarterly self-audit (``selfaudit``,
``questions``).  They read the warehouse and the evidence writer's selection; they never write
the warehouse."""
