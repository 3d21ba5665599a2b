// The bastion's host-key installer (infra/bastionHostKey.py), run for real with python3 against a fake instance
// metadata service (IMDSv2: every read needs the session token) and a fake SSM endpoint that checks the request's
// Signature Version 4 with an independent implementation (below, itself checked against AWS's documented example and
// against curl's --aws-sigv4). What is not the production path: the endpoints (loopback HTTP instead of IMDS and
// https://ssm.REGION.amazonaws.com) and the file paths (a scratch directory instead of /etc/ssh). The user data that
// carries it is checked by the real `cloud-init schema` (Debian's cloud-init 22.4, fetched into .tools/).
import test from "ava";
import { execFile, execFileSync } from "node:child_process";
import { createHash, createHmac } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { IncomingMessage, Server, ServerResponse, createServer } from "node:http";
import { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { parse } from "yaml";
import { bastionHostKeyParameterName, bastionUserData, hostKeyInstaller } from "../infra/bastion";
import { projectDir } from "./support/program";

const installer = join(projectDir, "infra", "bastionHostKey.py");
const python = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
const run = promisify(execFile);

// ---- an independent SigV4 verifier --------------------------------------------------------------------------

const hmac = (key: Buffer | string, data: string) => createHmac("sha256", key).update(data).digest();
const sha256 = (data: string | Buffer) => createHash("sha256").update(data).digest("hex");

/** The SigV4 signature of a request (AWS General Reference, "Signature Version 4 signing process"). */
function sigv4(secret: string, amzDate: string, region: string, service: string, method: string, path: string, query: string, headers: Record<string, string>, signed: string[], body: string): string {
  const canonical = [method, path, query, signed.map((h) => `${h}:${headers[h].trim().replace(/\s+/g, " ")}\n`).join(""), signed.join(";"), sha256(body)].join("\n");
  const scope = `${amzDate.slice(0, 8)}/${region}/${service}/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256(canonical)].join("\n");
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, amzDate.slice(0, 8)), region), service), "aws4_request");
  return createHmac("sha256", key).update(toSign).digest("hex");
}

/** Checks a received request's Authorization header against the verifier; returns why not, or undefined. */
function verify(req: IncomingMessage, body: string, secret: string): string | undefined {
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(String(req.headers.authorization));
  if (!m) return `malformed Authorization: ${req.headers.authorization}`;
  const [, , date, region, service, signedList, signature] = m;
  const signed = signedList.split(";");
  const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
  if (!String(headers["x-amz-date"]).startsWith(date)) return "x-amz-date does not match the credential scope";
  const [path, query = ""] = String(req.url).split("?");
  const expected = sigv4(secret, headers["x-amz-date"], region, service, String(req.method), path, query, headers, signed, body);
  return expected === signature ? undefined : `signature mismatch (signed: ${signedList})`;
}

/** Calls infra/bastionHostKey.py's own signer (the one the bastion runs). */
function pythonSignature(args: { method: string; host: string; path: string; query: string; headers: Record<string, string>; body: string; key: string; secret: string; token: string; region: string; service: string; amzDate: string }): string {
  const script = [
    "import importlib.util, datetime, json, sys",
    `spec = importlib.util.spec_from_file_location("installer", ${JSON.stringify(installer)})`,
    "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)",
    "a = json.loads(sys.stdin.read())",
    "now = datetime.datetime.strptime(a['amzDate'], '%Y%m%dT%H%M%SZ').replace(tzinfo=datetime.timezone.utc)",
    "h = m.signed_headers(a['method'], a['host'], a['path'], a['query'], a['headers'], a['body'].encode(), {'key': a['key'], 'secret': a['secret'], 'token': a['token']}, a['region'], a['service'], now)",
    "print(h['authorization'])",
  ].join("\n");
  return execFileSync(python, ["-c", script], { input: JSON.stringify(args), encoding: "utf8" }).trim();
}

// AWS's documented example request (General Reference, "Create a signed AWS API request": IAM ListUsers).
const example = {
  method: "GET", host: "iam.amazonaws.com", path: "/", query: "Action=ListUsers&Version=2010-05-08",
  headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8" }, body: "",
  key: "AKIDEXAMPLE", secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token: "", region: "us-east-1", service: "iam", amzDate: "20150830T123600Z",
};
const exampleSignature = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";

test("the installer's SigV4 signer and the test's verifier both reproduce AWS's documented example signature", (t) => {
  t.is(pythonSignature(example), `AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=${exampleSignature}`);
  const headers = { ...example.headers, host: example.host, "x-amz-date": example.amzDate };
  t.is(sigv4(example.secret, example.amzDate, example.region, example.service, "GET", "/", example.query, headers, ["content-type", "host", "x-amz-date"], ""), exampleSignature);
});

/** A loopback HTTP server; resolves with its base URL. */
async function serve(handler: (req: IncomingMessage, body: string, res: ServerResponse) => void): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8").on("data", (d) => (body += d)).on("end", () => handler(req, body, res));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

test("the signature of the SSM GetParameter request with a session token is the one curl --aws-sigv4 computes", async (t) => {
  let seen: { headers: Record<string, string>; body: string } | undefined;
  const { url, server } = await serve((req, body, res) => {
    seen = { headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)])), body };
    res.end("{}");
  });
  try {
    const body = JSON.stringify({ Name: "/kubeadm-ha/c/bastion/ssh-host-ed25519-key:3", WithDecryption: true });
    await run("curl", ["-s", "--aws-sigv4", "aws:amz:eu-west-1:ssm", "--user", "ASIAEXAMPLE:secret/key+example", "-H", "content-type: application/x-amz-json-1.1", "-H", "x-amz-target: AmazonSSM.GetParameter", "-H", "x-amz-security-token: session-token-example", "--data-binary", body, `${url}/`]);
    const sent = seen!;
    const ours = pythonSignature({
      method: "POST", host: new URL(url).host, path: "/", query: "", headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": "AmazonSSM.GetParameter" }, body,
      key: "ASIAEXAMPLE", secret: "secret/key+example", token: "session-token-example", region: "eu-west-1", service: "ssm", amzDate: sent.headers["x-amz-date"],
    });
    t.is(ours, sent.headers.authorization);
  } finally {
    server.close();
  }
});

interface Fakes {
  imds: string;
  ssm: string;
  requests: { imds: string[]; ssm: { ok: boolean; why?: string; name?: string }[] };
  close(): void;
}

const credentials = { AccessKeyId: "ASIABASTIONEXAMPLE", SecretAccessKey: "bastion/secret+example", Token: "bastion-session-token" };

/** IMDSv2 (reads need the session token) and SSM (checks the signature, answers the parameter), on loopback. */
async function fakes(parameter: string, value: () => string | undefined): Promise<Fakes> {
  const requests: Fakes["requests"] = { imds: [], ssm: [] };
  const sessionToken = "imds-session-token";
  const imds = await serve((req, _body, res) => {
    requests.imds.push(`${req.method} ${req.url}`);
    if (req.method === "PUT" && req.url === "/latest/api/token" && req.headers["x-aws-ec2-metadata-token-ttl-seconds"]) return res.end(sessionToken);
    if (req.headers["x-aws-ec2-metadata-token"] !== sessionToken) return (res.statusCode = 401), res.end();
    const answers: Record<string, string> = {
      "/latest/meta-data/placement/region": "eu-west-1",
      "/latest/meta-data/services/domain": "amazonaws.com",
      "/latest/meta-data/iam/security-credentials/": "kubeadm-ha-bastion",
      "/latest/meta-data/iam/security-credentials/kubeadm-ha-bastion": JSON.stringify({ Code: "Success", Type: "AWS-HMAC", ...credentials }),
    };
    if (answers[String(req.url)] === undefined) return (res.statusCode = 404), res.end();
    return res.end(answers[String(req.url)]);
  });
  const ssm = await serve((req, body, res) => {
    const why =
      req.method !== "POST" ? "not a POST"
      : req.headers["x-amz-target"] !== "AmazonSSM.GetParameter" ? `target ${req.headers["x-amz-target"]}`
      : req.headers["x-amz-security-token"] !== credentials.Token ? "no session token"
      : !/Credential=ASIABASTIONEXAMPLE\/\d{8}\/eu-west-1\/ssm\/aws4_request/.test(String(req.headers.authorization)) ? "wrong credential scope"
      : verify(req, body, credentials.SecretAccessKey);
    const request = JSON.parse(body || "{}");
    requests.ssm.push({ ok: why === undefined, why, name: request.Name });
    const answer = value();
    if (why !== undefined || request.Name !== parameter || request.WithDecryption !== true || answer === undefined) {
      res.statusCode = 400;
      return res.end(JSON.stringify({ __type: "AccessDeniedException" }));
    }
    return res.end(JSON.stringify({ Parameter: { Name: parameter, Type: "SecureString", Value: answer, Version: 3 } }));
  });
  return { imds: imds.url, ssm: ssm.url, requests, close: () => (imds.server.close(), ssm.server.close()) };
}

function scratch() {
  const dir = mkdtempSync(join(tmpdir(), "bastion-host-key-"));
  mkdirSync(join(dir, "etc/ssh/sshd_config.d"), { recursive: true });
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", join(dir, "program_key")]);
  return {
    dir,
    keyFile: join(dir, "etc/ssh/ssh_host_ed25519_key"),
    sshdConfig: join(dir, "etc/ssh/sshd_config.d/00-kubeadm-ha-host-key.conf"),
    programKey: readFileSync(join(dir, "program_key"), "utf8"),
    programPublic: readFileSync(join(dir, "program_key.pub"), "utf8").trim(),
  };
}

async function install(f: Fakes, s: ReturnType<typeof scratch>, parameter: string, deadline = 5) {
  const args = [installer, "--parameter", parameter, "--key-file", s.keyFile, "--sshd-config", s.sshdConfig, "--imds", f.imds, "--endpoint", f.ssm, "--deadline", String(deadline), "--retry-seconds", "0.5", "--restart-unit", ""];
  try {
    const { stdout, stderr } = await run(python, args, { timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (e: any) {
    return { code: e.code as number, stdout: e.stdout as string, stderr: e.stderr as string };
  }
}

const parameter = `${bastionHostKeyParameterName("kubeadm-ha-prod")}:3`;

test("first boot: the key is read through IMDSv2 credentials with a verified signature, installed 0600 with its .pub, and sshd told to offer only it; a second boot changes nothing", async (t) => {
  const s = scratch();
  const f = await fakes(parameter, () => s.programKey);
  try {
    const first = await install(f, s, parameter);
    t.is(first.code, 0, first.stderr);
    t.deepEqual(f.requests.ssm, [{ ok: true, why: undefined, name: parameter }]);
    t.true(f.requests.imds.every((r, i) => i > 0 || r === "PUT /latest/api/token"), "the session token first");
    t.is(readFileSync(s.keyFile, "utf8"), s.programKey);
    t.is(statSync(s.keyFile).mode & 0o777, 0o600);
    t.is(readFileSync(`${s.keyFile}.pub`, "utf8").trim().split(" ").slice(0, 2).join(" "), s.programPublic.split(" ").slice(0, 2).join(" "));
    t.is(readFileSync(s.sshdConfig, "utf8"), `# Written by kubeadm-ha (infra/bastionHostKey.py): the host key the program pins.\nHostKey ${s.keyFile}\n`);
    t.false(`${first.stdout}${first.stderr}`.includes(s.programKey.split("\n")[1]), "nothing secret is printed");
    t.regex(first.stderr, /\[bastion\] host-key: installed .*ssh_host_ed25519_key \(ssh-ed25519\)/);
    const again = await install(f, s, parameter);
    t.is(again.code, 0);
    t.regex(again.stderr, /is already the pinned key/);
    t.deepEqual(readdirSync(join(s.dir, "etc/ssh")).sort(), ["ssh_host_ed25519_key", "ssh_host_ed25519_key.pub", "sshd_config.d"], "no temporary file left");
  } finally {
    f.close();
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test("a parameter that is not an ed25519 private key never replaces a key; a first boot that cannot fetch one fails after its deadline with no host key; a later boot keeps the installed key", async (t) => {
  const s = scratch();
  let answer: string | undefined = "not a key";
  const f = await fakes(parameter, () => answer);
  try {
    const garbage = await install(f, s, parameter, 2);
    t.is(garbage.code, 1);
    t.regex(garbage.stderr, /does not hold an OpenSSH ed25519 private key/);
    t.regex(garbage.stderr, /giving up .* sshd has no host key/);
    t.false(existsSync(s.keyFile));
    t.deepEqual(readdirSync(join(s.dir, "etc/ssh")), ["sshd_config.d"], "nothing written, not even a temporary file");
    answer = undefined; // SSM refuses (as without the role, or before the Elastic IP gives the bastion a route out)
    const refused = await install(f, s, parameter, 2);
    t.is(refused.code, 1);
    t.regex(refused.stderr, /attempt 1: cannot fetch .* \(HTTP 400\); retrying/);
    t.true(f.requests.ssm.length >= 2, "retried within the deadline");
    answer = s.programKey;
    t.is((await install(f, s, parameter)).code, 0);
    answer = undefined;
    const later = await install(f, s, parameter, 2);
    t.is(later.code, 0);
    t.regex(later.stderr, /keeping the installed/);
    t.is(readFileSync(s.keyFile, "utf8"), s.programKey);
    answer = readFileSync(join(s.dir, "program_key"), "utf8").replace("OPENSSH", "RSA");
    t.is((await install(f, s, parameter, 2)).code, 0, "a bad value on a later boot keeps the installed key");
    t.is(readFileSync(s.keyFile, "utf8"), s.programKey);
  } finally {
    f.close();
    rmSync(s.dir, { recursive: true, force: true });
  }
});

// ---- the user data -----------------------------------------------------------------------------------------

/** Debian's cloud-init 22.4 and its Python dependencies, unpacked into .tools/cloud-init (apt-get download). */
function cloudInit(): { bin: string; env: NodeJS.ProcessEnv } {
  const root = join(projectDir, ".tools", "cloud-init");
  const site = join(root, "root", "usr", "lib", "python3", "dist-packages");
  const bin = join(root, "root", "usr", "bin", "cloud-init");
  if (!existsSync(bin)) {
    mkdirSync(root, { recursive: true });
    const packages = ["cloud-init", "python3-jsonschema", "python3-attr", "python3-pyrsistent", "python3-configobj", "python3-jinja2", "python3-markupsafe", "python3-yaml",
      "python3-jsonpatch", "python3-json-pointer", "python3-requests", "python3-urllib3", "python3-chardet", "python3-charset-normalizer", "python3-idna", "python3-certifi",
      "python3-netifaces", "python3-six"];
    execFileSync("apt-get", ["download", ...packages], { cwd: root, stdio: ["ignore", "pipe", "pipe"], timeout: 300_000 });
    for (const deb of readdirSync(root).filter((f) => f.endsWith(".deb"))) execFileSync("dpkg-deb", ["-x", join(root, deb), join(root, "root")]);
  }
  return { bin, env: { ...process.env, PYTHONPATH: site } };
}

test("the bastion's user data passes the real `cloud-init schema`, carries the installer verbatim in bootcmd before cloud-init's ssh module, and no secret", (t) => {
  const userData = bastionUserData({ hostname: "bastion", parameter });
  const config = parse(userData.replace(/^#cloud-config\n/, ""));
  t.deepEqual(config.bootcmd, [["python3", "-c", hostKeyInstaller, "--parameter", parameter]]);
  t.false(config.ssh_deletekeys, "cloud-init keeps the installed key");
  t.deepEqual(config.ssh_genkeytypes, ["ed25519"]);
  t.false(/PRIVATE KEY-----\n[A-Za-z0-9+/]/.test(userData));
  const dir = mkdtempSync(join(tmpdir(), "bastion-user-data-"));
  try {
    writeFileSync(join(dir, "user-data"), userData);
    writeFileSync(join(dir, "broken"), userData.replace("ssh_genkeytypes:\n  - ed25519", "ssh_genkeytypes: []"));
    const ci = cloudInit();
    const check = (file: string) => {
      try {
        return { code: 0, out: execFileSync("/usr/bin/python3", [ci.bin, "schema", "--config-file", file], { env: ci.env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }) };
      } catch (e: any) {
        return { code: e.status as number, out: `${e.stdout}${e.stderr}` };
      }
    };
    const good = check(join(dir, "user-data"));
    t.is(good.code, 0, good.out);
    t.regex(good.out, /Valid cloud-config/);
    const broken = check(join(dir, "broken"));
    t.not(broken.code, 0, "the schema check does refuse what cloud-init would not read as meant");
    t.regex(broken.out, /ssh_genkeytypes: \[\] is too short/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  t.throws(() => bastionUserData({ hostname: "bastion", parameter: "name; reboot" }), { message: /not an SSM parameter name/ });
});
