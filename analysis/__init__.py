"""Statistics over stored results: paired comparisons over queries and seeds, scaling fits, findings.

Pure computation on plain records (numpy and scipy; no torch, Qt or
database), so the command line, the demo report and the desktop app's
Findings page all use the same numbers.
"""
