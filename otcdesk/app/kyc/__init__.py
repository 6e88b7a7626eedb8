"""Client onboarding (CONTRACTS Part 2: KYC onboarding, private blacklist screening).

- `validation.py`  field-level checks of the application form (GB 32100 USCC, GB 11643 ID, mobile, capital…)
"""
