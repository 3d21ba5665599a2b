// A static reading of a generated bash script: where it calls a command that can block (a service manager, the
// cluster's clients, a download) without a bound. Used by test/scriptHygiene.test.ts over the whole catalog.
//
// What counts as bounded: the command runs under `timeout N` (optionally `timeout N env VAR=... cmd`), or carries
// its own overall deadline (curl --max-time / -m, flock -w), or is one of the local calls that cannot wait on
// anything (`kubeadm version`, `kubeadm certs certificate-key`, `kubectl version --client`, `kubectl config`).

/** Commands that can wait on something outside the script: each call must be bounded. */
export const blockingCommands = [
  "systemctl",
  "journalctl",
  "snap",
  "kubectl",
  "kubeadm",
  "etcdctl",
  "aws",
  "crictl",
  "apt-get",
  "helm",
  "ctr",
  "curl",
  "flock",
  "cloud-init",
] as const;

export interface UnboundedCall {
  line: number;
  command: string;
  text: string;
}

/**
 * The script with every literal (single-quoted text, double-quoted text outside `$(...)`, comments, here-document
 * bodies) blanked out, newlines kept: what remains is code, at its original line numbers.
 */
export function codeOnly(script: string): string {
  let out = "";
  let i = 0;
  const n = script.length;
  // A stack of contexts: "code" (top level or inside $( )), "dq" (inside double quotes).
  const stack: ("code" | "dq")[] = ["code"];
  let parens: number[] = [0];
  let heredoc: string | undefined;
  const blank = (c: string) => (c === "\n" ? "\n" : " ");
  while (i < n) {
    const c = script[i];
    const top = stack[stack.length - 1];
    if (heredoc !== undefined) {
      // Inside a here-document: blank until a line that is exactly the terminator.
      const end = script.indexOf("\n", i);
      const line = script.slice(i, end < 0 ? n : end);
      if (line.trim() === heredoc) {
        heredoc = undefined;
        out += line;
      } else {
        out += line.replace(/[^\n]/g, " ");
      }
      if (end < 0) break;
      out += "\n";
      i = end + 1;
      continue;
    }
    if (top === "code") {
      if (c === "#" && (i === 0 || /[\s;|&(]/.test(script[i - 1]))) {
        while (i < n && script[i] !== "\n") {
          out += " ";
          i++;
        }
        continue;
      }
      if (c === "\\" && i + 1 < n) {
        out += c + script[i + 1];
        i += 2;
        continue;
      }
      if (c === "'") {
        out += "'";
        i++;
        while (i < n && script[i] !== "'") out += blank(script[i++]);
        out += "'";
        i++;
        continue;
      }
      if (c === '"') {
        stack.push("dq");
        out += '"';
        i++;
        continue;
      }
      if (script.startsWith("<<", i) && script[i + 2] !== "<") {
        const m = /^<<-?\s*(['"]?)([A-Za-z_][A-Za-z0-9_]*)\1/.exec(script.slice(i));
        if (m) {
          out += m[0];
          i += m[0].length;
          // The body starts on the next line.
          const end = script.indexOf("\n", i);
          out += script.slice(i, end < 0 ? n : end + 1);
          i = end < 0 ? n : end + 1;
          heredoc = m[2];
          continue;
        }
      }
      if (c === "(") parens[parens.length - 1]++;
      if (c === ")") {
        if (parens[parens.length - 1] === 0 && stack.length > 1) {
          // The end of a $( ) inside double quotes.
          stack.pop();
          parens.pop();
          out += ")";
          i++;
          continue;
        }
        parens[parens.length - 1]--;
      }
      out += c;
      i++;
      continue;
    }
    // Inside double quotes.
    if (c === "\\" && i + 1 < n) {
      out += "  ";
      i += 2;
      continue;
    }
    if (c === '"') {
      stack.pop();
      out += '"';
      i++;
      continue;
    }
    if (c === "$" && script[i + 1] === "(" && script[i + 2] !== "(") {
      stack.push("code");
      parens.push(0);
      out += "$(";
      i += 2;
      continue;
    }
    out += blank(c);
    i++;
  }
  parens = [];
  return out;
}

const commandStart = String.raw`(?:^|[|;&{!]|(?<!=)\(|\bthen\b|\bdo\b|\belse\b|\bif\b|\buntil\b|\bwhile\b|\$\()`;

/** The calls of blocking commands in a script that no bound covers. */
export function unboundedCalls(script: string): UnboundedCall[] {
  const code = codeOnly(script);
  // Continuation lines join their command; line numbers follow the first line.
  const lines = code.split("\n");
  const original = script.split("\n");
  const found: UnboundedCall[] = [];
  for (let i = 0; i < lines.length; i++) {
    let text = lines[i];
    const first = i;
    while (/\\\s*$/.test(text) && i + 1 < lines.length) text = text.replace(/\\\s*$/, " ") + lines[++i];
    for (const command of blockingCommands) {
      const re = new RegExp(`${commandStart}\\s*((?:[A-Za-z_][A-Za-z0-9_]*=\\S*\\s+)*)((?:retry\\s+\\S+\\s+\\S+\\s+)?)((?:timeout\\s+(?:-\\S+\\s+)*\\S+\\s+(?:env\\s+(?:\\S+=\\S*\\s+)*)?)?)${command.replace("-", "\\-")}(?=\\s|$|\\))([^|;&)]*)`, "g");
      let m: RegExpExecArray | null;
      while ((m = re.exec(text))) {
        const bounded = m[3] !== "" || selfBounded(command, m[4]);
        if (!bounded) found.push({ line: first + 1, command, text: original[first].trim() });
      }
    }
  }
  return found;
}

function selfBounded(command: string, args: string): boolean {
  const words = args.trim().split(/\s+/);
  switch (command) {
    case "curl":
      return /(^|\s)(--max-time|-m)(\s|=)/.test(args);
    case "flock":
      return /(^|\s)-w\s/.test(args);
    case "kubeadm":
      return words[0] === "version" || (words[0] === "certs" && words[1] === "certificate-key");
    case "kubectl":
      return (words[0] === "version" && words.includes("--client")) || words[0] === "config";
    default:
      return false;
  }
}
