"""HTML reports of the gate and the audits: the verdict, tables and plots a person can read.

Each ``write_*_report`` function writes a directory a browser opens without a
network: ``index.html`` (inline CSS, no JavaScript, no CDN), the PNG charts it shows
(referenced by relative paths), and ``report.json``, the data the page was made from.
CI can upload the directory as an artifact; anyone can read the verdict without the
terminal.

The charts:

- predicted vs executed action distributions, side by side: the chart that shows at
  a glance an agent that "sells all day" while nothing executes (the seed's Bug #1);
- an equity curve over the price path with buys, sells and rejected actions marked,
  for the worst counterexample (rebuilt by replaying it through the env);
- for the reward audit, each counterexample market with the shaped-optimal and the
  PnL-optimal action sequences drawn on it.

Every function takes the report object (:class:`~tradeguard.invariants.CatalogReport`,
``RewardAuditReport``, ``PolicyAuditReport``) or its JSON form (``as_dict()`` /
``as_dict()``, e.g. read back from ``--json`` output). The object carries more than
its JSON: from a dict, the policy report has no traces (so no equity chart) and the
reward report replays on the scenario its name designates.

matplotlib is needed (``pip install 'tradeguard[report]'``); it is imported when a
report is written, never at import, and never through ``pyplot``: the importing
program's backend and global state are left alone.
"""

from __future__ import annotations

from tradeguard._reports._check import write_check_report
from tradeguard._reports._page import DATA_FILE, REPORT_FILE
from tradeguard._reports._policy import write_policy_audit_report
from tradeguard._reports._reward import write_reward_audit_report

__all__ = [
    "DATA_FILE",
    "REPORT_FILE",
    "write_check_report",
    "write_policy_audit_report",
    "write_reward_audit_report",
]
