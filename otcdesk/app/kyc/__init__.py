"""Client onboarding (CONTRACTS Part 2: KYC onboarding, private blacklist screening).

- `validation.py`  field-level checks of the application form (GB 32100 USCC, GB 11643 ID, mobile, capital…)
- `psi.py`         private blacklist screening: ECDH private set intersection (openmined-psi, RAW) over HTTP — holder app, client
- `news.py`        negative news: a local article folder searched for an institution's full/short names and a person's name
- `screening.py`   `Screener`: what onboarding calls — blacklist (PSI, local list or not configured) and negative news
- `synthetic.py`   seeded synthetic USCC / ID numbers with valid check characters (demo list, tests, benchmarks)
- `eseal.py`       the desk's e-seal: configured PEM key and certificate, or a desk root CA and e-seal generated once
- `agreement.py`   the master agreement PDF (主协议): drawn from an application, sealed (PAdES B-B), verified
- `report.py`      the due-diligence report (尽职调查报告) as CSP-clean HTML and as PDF, identifiers masked
- `service.py`     `KycService`: invitations, the form and documents, the reviews step by step, screening, report,
                   the signed agreement, binding groups (what the routes and the desk call)
"""
