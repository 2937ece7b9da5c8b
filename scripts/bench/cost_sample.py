"""The sample the cost model measures: which account-days of a corpus, the objects around them
as Athena's catalog would list them, and a folder holding the sampled days in the bucket's
layout (symbolic links to the corpus, nothing copied).

A corpus holds one or more trees `.../AWSLogs/[o-ORG/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/`
(scripts/bench.sh generates one per organisation); the folder above `AWSLogs/` stands for the
bucket. Objects are recognised by CloudTrail's name alone:
ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHmmZ_RAND.json.gz, where the stamp is the delivery minute.
"""

import dataclasses
import datetime
import os
import random
import re

NAME = re.compile(r"^([0-9]{12})_CloudTrail_([a-z][a-z0-9-]{0,31})_([0-9]{8}T[0-9]{4}Z)_[^/]*$")
ACCOUNT = re.compile(r"^[0-9]{12}$")
# The bucket the sample stands in, in "$path" and on the emulator.
BUCKET = "trailhound-cost-bench"


@dataclasses.dataclass
class Account:
    id: str
    org: str | None
    base: str  # the folder standing for the bucket: it holds AWSLogs/
    regions: list
    days: list  # datetime.date of every day folder, sorted

    def day_folder(self, region, day):
        org = [self.org] if self.org else []
        return os.path.join(self.base, "AWSLogs", *org, self.id, "CloudTrail", region,
                            f"{day:%Y}", f"{day:%m}", f"{day:%d}")


@dataclasses.dataclass
class Obj:
    path: str  # "$path" as Athena gives it: s3://BUCKET/KEY
    key: str
    file: str
    account: str
    region: str
    delivery_date: str  # the partition value, YYYY/MM/DD
    size: int
    delivered: datetime.datetime  # the delivery minute of the name, UTC


def days_under(region_folder):
    days = set()
    for y in sorted(os.listdir(region_folder)):
        for m in sorted(os.listdir(os.path.join(region_folder, y))):
            for d in sorted(os.listdir(os.path.join(region_folder, y, m))):
                try:
                    days.add(datetime.date(int(y), int(m), int(d)))
                except ValueError:
                    pass
    return days


def discover(root):
    """Every account of the corpus with its regions and day folders. Walks down to the
    accounts' CloudTrail folders only."""
    accounts = []
    for dirpath, dirnames, _ in os.walk(root):
        if os.path.basename(dirpath) == "CloudTrail" and ACCOUNT.match(
                os.path.basename(os.path.dirname(dirpath))):
            dirnames[:] = []
            parts = dirpath.split(os.sep)
            at = len(parts) - 1 - parts[::-1].index("AWSLogs")
            org = parts[at + 1] if parts[at + 1].startswith("o-") else None
            regions = sorted(r for r in os.listdir(dirpath) if re.match(r"^[a-z]{2}(-[a-z]+)+-[0-9]+$", r))
            days = set()
            for r in regions:
                days |= days_under(os.path.join(dirpath, r))
            accounts.append(Account(parts[-2], org, os.sep.join(parts[:at]), regions, sorted(days)))
        else:
            dirnames[:] = [d for d in dirnames if d not in ("CloudTrail-Digest", "CloudTrail-Insight")]
    return sorted(accounts, key=lambda a: a.id)


def sample(accounts, n_accounts, n_days, seed):
    """[(Account, day)]: `n_accounts` accounts and `n_days` whole days of each, by `seed`. The
    first and last day folder of an account are partial (a generated history starts and ends
    mid-day), so they are not sampled."""
    rng = random.Random(seed)
    if n_accounts > len(accounts):
        raise SystemExit(f"cost.py: {n_accounts} accounts asked, the corpus has {len(accounts)}")
    chosen = []
    for account in sorted(rng.sample(accounts, n_accounts), key=lambda a: a.id):
        whole = account.days[1:-1]
        if n_days > len(whole):
            raise SystemExit(f"cost.py: account {account.id} has {len(whole)} days to sample from")
        for day in sorted(rng.sample(whole, n_days)):
            chosen.append((account, day))
    return chosen


def objects(account, day):
    """The log objects of one account and delivery day, every region."""
    out = []
    for region in account.regions:
        folder = account.day_folder(region, day)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            m = NAME.match(name)
            if not m or m.group(1) != account.id or m.group(2) != region:
                continue
            file = os.path.join(folder, name)
            key = os.path.relpath(file, account.base).replace(os.sep, "/")
            delivered = datetime.datetime.strptime(m.group(3), "%Y%m%dT%H%MZ")
            out.append(Obj(f"s3://{BUCKET}/{key}", key, file, account.id, region,
                           f"{day:%Y/%m/%d}", os.stat(file).st_size, delivered))
    return out


def catalog(chosen):
    """The objects of every sampled day and of the days either side (partitions that exist
    and that no hourly statement of the sampled days should read)."""
    seen, out = set(), []
    for account, day in chosen:
        for d in (day - datetime.timedelta(days=1), day, day + datetime.timedelta(days=1)):
            if (account.id, d) not in seen:
                seen.add((account.id, d))
                out += objects(account, d)
    return out


def link(objs, folder):
    """Symbolic links to `objs` under `folder`, by key: the bucket's layout."""
    for o in objs:
        target = os.path.join(folder, *o.key.split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.symlink(os.path.abspath(o.file), target)
