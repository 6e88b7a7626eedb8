"""Client onboarding (CONTRACTS Part 2: KYC onboarding, private blacklist screening).

- `validation.py`  field-level checks of the application form (GB 32100 USCC, GB 11643 ID, mobile, capital…)
- `eseal.py`       the desk's e-seal: configured PEM key and certificate, or a desk root CA and e-seal generated once
- `agreement.py`   the master agreement PDF (主协议): drawn from an application, sealed (PAdES B-B), verified
- `report.py`      the due-diligence report (尽职调查报告) as CSP-clean HTML and as PDF, identifiers masked
"""
