"""Installs the bastion's SSH host key from an SSM SecureString parameter, at boot, before sshd starts.

Run by cloud-init's bootcmd (infra/bastion.ts), so the private half never passes through user data (which is plain
text in state and readable on the instance). Python's standard library only (python3 is on every Ubuntu cloud image,
cloud-init itself runs on it); the request is signed with AWS Signature Version 4 from the instance role's credentials
(IMDSv2).

Invariants:
- The key file is written atomically, mode 0600, and only with a value that is an OpenSSH ed25519 private key.
- A later boot that cannot reach SSM keeps the installed key (the bastion stays reachable); the first boot that
  cannot fetch it within --deadline fails, and sshd has no host key: nobody can impersonate the pinned key.
- Nothing secret is printed.
"""

import argparse
import datetime
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

IMDS = "http://169.254.169.254"


def log(message):
    print(f"[bastion] host-key: {message}", file=sys.stderr, flush=True)


def imds_get(base, path, token):
    request = urllib.request.Request(base + path, headers={"X-aws-ec2-metadata-token": token})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.read().decode()


def imds_token(base):
    request = urllib.request.Request(base + "/latest/api/token", method="PUT", headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.read().decode()


def sign(key, message):
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def signature_v4(secret_key, date_stamp, region, service, string_to_sign):
    """The SigV4 signature of string_to_sign (AWS General Reference, "Create a signed AWS API request")."""
    k_date = sign(("AWS4" + secret_key).encode(), date_stamp)
    k_region = hmac.new(k_date, region.encode(), hashlib.sha256).digest()
    k_service = hmac.new(k_region, service.encode(), hashlib.sha256).digest()
    k_signing = hmac.new(k_service, b"aws4_request", hashlib.sha256).digest()
    return hmac.new(k_signing, string_to_sign.encode(), hashlib.sha256).hexdigest()


def signed_headers(method, host, path, query, headers, body, credentials, region, service, now):
    """Headers (Authorization included) of a SigV4-signed request. `headers` are signed, with host and x-amz-date."""
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    date_stamp = now.strftime("%Y%m%d")
    all_headers = {k.lower(): " ".join(str(v).split()) for k, v in headers.items()}
    all_headers["host"] = host
    all_headers["x-amz-date"] = amz_date
    if credentials.get("token"):
        all_headers["x-amz-security-token"] = credentials["token"]
    names = sorted(all_headers)
    canonical_headers = "".join(f"{n}:{all_headers[n]}\n" for n in names)
    signed = ";".join(names)
    payload_hash = hashlib.sha256(body).hexdigest()
    canonical_request = "\n".join([method, path, query, canonical_headers, signed, payload_hash])
    scope = f"{date_stamp}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()])
    signature = signature_v4(credentials["secret"], date_stamp, region, service, string_to_sign)
    result = {k: v for k, v in all_headers.items() if k != "host"}
    result["authorization"] = f"AWS4-HMAC-SHA256 Credential={credentials['key']}/{scope}, SignedHeaders={signed}, Signature={signature}"
    return result


def fetch_parameter(args):
    token = imds_token(args.imds)
    region = imds_get(args.imds, "/latest/meta-data/placement/region", token).strip()
    try:
        domain = imds_get(args.imds, "/latest/meta-data/services/domain", token).strip() or "amazonaws.com"
    except urllib.error.HTTPError:
        domain = "amazonaws.com"
    roles = imds_get(args.imds, "/latest/meta-data/iam/security-credentials/", token).split()
    if not roles:
        raise RuntimeError("the instance has no role")
    raw = json.loads(imds_get(args.imds, "/latest/meta-data/iam/security-credentials/" + roles[0], token))
    credentials = {"key": raw["AccessKeyId"], "secret": raw["SecretAccessKey"], "token": raw.get("Token", "")}
    endpoint = args.endpoint or f"https://ssm.{region}.{domain}"
    host = endpoint.split("://", 1)[1].split("/", 1)[0]
    body = json.dumps({"Name": args.parameter, "WithDecryption": True}).encode()
    headers = signed_headers(
        "POST", host, "/", "",
        {"content-type": "application/x-amz-json-1.1", "x-amz-target": "AmazonSSM.GetParameter"},
        body, credentials, region, "ssm", datetime.datetime.now(datetime.timezone.utc),
    )
    request = urllib.request.Request(endpoint + "/", data=body, method="POST", headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read().decode())["Parameter"]["Value"]


def install(args, value):
    key_file = args.key_file
    text = value if value.endswith("\n") else value + "\n"
    if os.path.exists(key_file):
        with open(key_file) as f:
            if f.read() == text:
                log(f"{key_file} is already the pinned key")
                return
    tmp = key_file + ".kubeadm-ha-tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    # ssh-keygen -y reads only a private key: anything else in the parameter fails here, before it replaces a key.
    derived = subprocess.run(["ssh-keygen", "-y", "-f", tmp], capture_output=True, text=True)
    if derived.returncode != 0 or not derived.stdout.startswith("ssh-ed25519 "):
        os.unlink(tmp)
        raise RuntimeError("the parameter does not hold an OpenSSH ed25519 private key")
    public = derived.stdout
    with open(key_file + ".pub.kubeadm-ha-tmp", "w") as f:
        f.write(public)
    os.replace(tmp, key_file)
    os.replace(key_file + ".pub.kubeadm-ha-tmp", key_file + ".pub")
    # sshd offers only this key: HostKey lines replace the default set.
    with open(args.sshd_config, "w") as f:
        f.write(f"# Written by kubeadm-ha (infra/bastionHostKey.py): the host key the program pins.\nHostKey {key_file}\n")
    # Normally sshd has not started yet (cloud-init's network stage runs first); if it has, it must reload its keys.
    # --no-block: a job waiting for the unit ordered after this boot stage would otherwise never start.
    if args.restart_unit:
        subprocess.run(["systemctl", "--no-block", "try-restart", args.restart_unit], check=False, capture_output=True)
    log(f"installed {key_file} ({public.split()[0]})")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--parameter", required=True)
    parser.add_argument("--key-file", default="/etc/ssh/ssh_host_ed25519_key")
    parser.add_argument("--sshd-config", default="/etc/ssh/sshd_config.d/00-kubeadm-ha-host-key.conf")
    parser.add_argument("--restart-unit", default="ssh.service", help="the sshd unit to restart if it already runs ('' for none)")
    parser.add_argument("--deadline", type=float, default=600, help="seconds to keep trying on a first boot")
    parser.add_argument("--retry-seconds", type=float, default=5, help="pause between attempts")
    parser.add_argument("--imds", default=IMDS)
    parser.add_argument("--endpoint", default="", help="the SSM endpoint (default https://ssm.REGION.DOMAIN)")
    args = parser.parse_args()
    stop = time.monotonic() + args.deadline
    attempt = 0
    while True:
        attempt += 1
        try:
            install(args, fetch_parameter(args))
            return 0
        except (OSError, urllib.error.URLError, ValueError, KeyError, RuntimeError, subprocess.CalledProcessError) as err:
            reason = f"HTTP {err.code}" if isinstance(err, urllib.error.HTTPError) else type(err).__name__ + (f": {err}" if isinstance(err, RuntimeError) else "")
            if os.path.exists(args.key_file):
                log(f"cannot fetch {args.parameter} ({reason}); keeping the installed {args.key_file}")
                return 0
            if time.monotonic() >= stop:
                log(f"giving up on {args.parameter} after {attempt} attempts ({reason}): sshd has no host key")
                return 1
            log(f"attempt {attempt}: cannot fetch {args.parameter} yet ({reason}); retrying")
            time.sleep(args.retry_seconds)


if __name__ == "__main__":
    sys.exit(main())
