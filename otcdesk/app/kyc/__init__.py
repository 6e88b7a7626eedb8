"""Client onboarding (CONTRACTS Part 2: KYC onboarding, private blacklist screening).

- `validation.py`  field-level checks of the application form (GB 32100 USCC, GB 11643 ID, mobile, capital…)
- `psi.py`         private blacklist screening: ECDH private set intersection (openmined-psi, RAW) over HTTP — holder app, client
- `news.py`        negative news: a local article folder searched for an institution's full/short names and a person's name
- `screening.py`   `Screener`: what onboarding calls — blacklist (PSI, local list or not configured) and negative news
- `synthetic.py`   seeded synthetic USCC / ID numbers with valid check characters (demo list, tests, benchmarks)
"""
