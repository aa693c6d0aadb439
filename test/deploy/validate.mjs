#!/usr/bin/env node
// Validates callrec's deployment material under deploy/.
//
//   node test/deploy/validate.mjs              validate deploy/, then the self-test
//   node test/deploy/validate.mjs --no-self-test
//   node test/deploy/validate.mjs --self-test  only the self-test
//
// What is checked:
//   deploy/kubernetes  every YAML document parses (YAML 1.1, as kubectl reads
//                      it) and validates against its kind's schema from the
//                      Kubernetes OpenAPI spec (npm kubernetes-models, compiled
//                      ajv validators); fields the schema does not know are
//                      refused (kubectl --validate=strict does the same);
//                      references between objects resolve (selectors, ports,
//                      Services, Secrets, ConfigMaps, kustomization); every
//                      container is hardened and sized; the media roles drain
//                      before they stop.
//   flags              every --flag and CALLREC_* variable used in deploy/ is a
//                      flag of that callrec command (`callrec CMD --help`, plus
//                      upcoming-flags.txt for what is being written).
//   deploy/systemd     `systemd-analyze verify` (any message fails) and the
//                      hardening every unit must have.
//   deploy/nginx, deploy/haproxy   `nginx -t` and `haproxy -c` on a copy with
//                      test certificates and local addresses, when the
//                      binaries are there (test/deploy/fetch-tools.sh).
//   deploy/grafana, deploy/prometheus   JSON/YAML parse; every metric name in
//                      a PromQL expression is one callrec registers (from the
//                      Go code) or is listed in metrics-extra.txt.
// The self-test breaks a copy of deploy/ in one place at a time and checks
// that each break is caught with the expected message.
//
// The last line is "deploy: N passed, N failed, N skipped"; the exit status
// is 1 when anything failed.

import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, "../..");
const NM = join(HERE, "node_modules");
const NAMESPACE = "callrec";
// Containers of these roles hold live calls: they must drain before stopping.
const DRAINING_ROLES = new Set(["recorder", "mediaadapter", "lb"]);
// Variables that are not flags but are read by callrec or the Go runtime.
const OTHER_ENV = new Set(["GOMEMLIMIT", "GOGC", "GOMAXPROCS", "CALLREC_PASSWORD"]);
const ENV_ALIASES = { TWILIO_AUTH_TOKEN: "twilio-auth-token", TWILIO_ACCOUNT_SID: "twilio-account-sid" };

// ---------------------------------------------------------------- results

class Results {
  constructor(quiet = false) {
    this.quiet = quiet;
    this.passed = 0;
    this.failed = 0;
    this.skipped = 0;
    this.errors = [];
    this.notes = new Set();
  }
  // check records one named check: errs is a list of messages (empty: pass).
  check(name, errs) {
    if (errs.length === 0) {
      this.passed++;
      if (!this.quiet) console.log(`ok    ${name}`);
      return;
    }
    this.failed++;
    for (const e of errs) this.errors.push(`${name}: ${e}`);
    if (!this.quiet) {
      console.log(`FAIL  ${name}`);
      for (const e of errs) console.log(`      ${e}`);
    }
  }
  skip(name, why) {
    this.skipped++;
    if (!this.quiet) console.log(`skip  ${name}: ${why}`);
  }
  note(msg) {
    this.notes.add(msg);
  }
}

// ---------------------------------------------------------------- helpers

const SKIP_DIRS = new Set(["node_modules", ".git", ".tools"]);

function walk(dir, pred) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    if (SKIP_DIRS.has(name)) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p, pred));
    else if (pred(p)) out.push(p);
  }
  return out;
}

function which(cmd) {
  const r = spawnSync("sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : null;
}

function levenshtein(a, b) {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length][b.length];
}

function suggest(word, candidates) {
  let best = null;
  let bestD = Infinity;
  for (const c of candidates) {
    const dist = c.toLowerCase() === word.toLowerCase() ? 0 : levenshtein(word, c);
    if (dist < bestD) [best, bestD] = [c, dist];
  }
  return best !== null && bestD <= 3 ? ` (did you mean "${best}"?)` : "";
}

// Go's time.ParseDuration for the forms deploy/ uses ("2h", "2h5m", "90s").
function goDuration(s) {
  const units = { ns: 1e-9, us: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };
  let total = 0;
  let rest = String(s);
  if (!/^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/.test(rest)) return NaN;
  for (const m of rest.matchAll(/(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)/g)) total += Number(m[1]) * units[m[2]];
  return total;
}

// systemd time spans: "2h5min", "1min", "90s", "7500".
function systemdSeconds(s) {
  const units = { us: 1e-6, ms: 1e-3, s: 1, sec: 1, m: 60, min: 60, h: 3600, hr: 3600, d: 86400 };
  if (/^\d+$/.test(s)) return Number(s);
  let total = 0;
  const re = /(\d+)\s*(us|ms|sec|s|min|m|hr|h|d)/g;
  let matched = "";
  for (const m of s.matchAll(re)) {
    total += Number(m[1]) * units[m[2]];
    matched += m[0];
  }
  return matched.replace(/\s/g, "") === s.replace(/\s/g, "") ? total : NaN;
}

// The --flags of a command line (tokens) and the callrec command they go to.
function parseCallrecCommand(tokens) {
  const i = tokens.findIndex((t) => /(^|\/)callrec$/.test(t));
  if (i < 0) return null;
  let rest = tokens.slice(i + 1);
  const cmd = [];
  while (rest.length && !rest[0].startsWith("-") && cmd.length < 2) {
    cmd.push(rest.shift());
    if (cmd[0] !== "pool") break;
  }
  const flags = [];
  for (const t of rest) {
    const m = t.match(/^--?([a-z][a-z0-9-]*)(=|$)/);
    if (m) flags.push(m[1]);
  }
  return { cmd: cmd.join(" "), flags };
}

function shellWords(s) {
  return [...s.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]);
}

// ---------------------------------------------------------------- callrec flags

// Flags of each callrec command, from --help of a freshly built binary,
// plus upcoming-flags.txt. null when there is no Go toolchain.
function loadFlags(res) {
  const upcoming = new Map();
  for (const line of readFileSync(join(HERE, "upcoming-flags.txt"), "utf8").split("\n")) {
    const m = line.match(/^([a-z][a-z ]*):\s*(.*)$/);
    if (m) upcoming.set(m[1].trim(), new Set(m[2].split(/\s+/).filter(Boolean)));
  }
  let bin = process.env.CALLREC_BIN;
  if (!bin) {
    const go = which("go") ?? (existsSync("/usr/local/go/bin/go") ? "/usr/local/go/bin/go" : null);
    if (!go) return { upcoming, known: null };
    const dir = mkdtempSync(join(tmpdir(), "callrec-deploy-bin-"));
    process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
    bin = join(dir, "callrec");
    const r = spawnSync(go, ["build", "-o", bin, "./cmd/callrec"], { cwd: REPO, encoding: "utf8" });
    if (r.status !== 0) {
      res.check("flags: build callrec to read its --help", [r.stderr.trim() || "go build failed"]);
      return { upcoming, known: null };
    }
  }
  const known = new Map();
  const cmds = new Set(["run", "recorder", "mediaadapter", "tracker", "eventadapter", "consolidation", "lb", "pool drain", "pool status", ...upcoming.keys()]);
  for (const cmd of cmds) {
    const r = spawnSync(bin, [...cmd.split(" "), "--help"], { encoding: "utf8" });
    const out = `${r.stdout}\n${r.stderr}`;
    const flags = new Set([...out.matchAll(/^\s+-([a-z][a-z0-9-]*)/gm)].map((m) => m[1]));
    known.set(cmd, { exists: /^Usage: callrec /m.test(out), flags });
    for (const f of upcoming.get(cmd) ?? []) {
      if (flags.has(f)) res.note(`upcoming-flags.txt: "${cmd} --${f}" is now in --help; remove it from the list`);
    }
  }
  return { upcoming, known };
}

function flagsOf(F, cmd) {
  const s = new Set(F.upcoming.get(cmd) ?? []);
  for (const f of F.known?.get(cmd)?.flags ?? []) s.add(f);
  return s;
}

function commandKnown(F, cmd) {
  return F.upcoming.has(cmd) || F.known?.get(cmd)?.exists;
}

function envToFlag(name) {
  if (ENV_ALIASES[name]) return ENV_ALIASES[name];
  const m = name.match(/^CALLREC_([A-Z0-9_]+)$/);
  return m ? m[1].toLowerCase().replaceAll("_", "-") : null;
}

// Errors for a command's flags and environment variables. env: names set
// for this command only; every CALLREC_* must be one of its flags.
function checkFlags(F, where, cmd, flags, env = []) {
  const errs = [];
  if (!commandKnown(F, cmd)) return [`${where}: "callrec ${cmd}" is not a callrec command`];
  const have = flagsOf(F, cmd);
  for (const f of flags) {
    if (!have.has(f)) errs.push(`${where}: callrec ${cmd} has no flag --${f}${suggest(f, have)}`);
  }
  for (const name of env) {
    if (OTHER_ENV.has(name)) continue;
    const f = envToFlag(name);
    if (f === null) continue;
    if (!have.has(f)) errs.push(`${where}: ${name} is not a flag of callrec ${cmd} (no --${f}${suggest(f, have)})`);
  }
  return errs;
}

// Errors for variables shared by several commands (a ConfigMap, an env
// file): each CALLREC_* must be a flag of at least one callrec command.
function checkSharedEnv(F, where, names) {
  const all = new Set();
  for (const cmd of new Set([...F.known.keys(), ...F.upcoming.keys()])) for (const f of flagsOf(F, cmd)) all.add(f);
  const errs = [];
  for (const name of names) {
    if (OTHER_ENV.has(name)) continue;
    const f = envToFlag(name);
    if (f === null) continue;
    if (!all.has(f)) errs.push(`${where}: ${name} is no callrec flag (--${f})${suggest(f, all)}; callrec would ignore it`);
  }
  return errs;
}

// ---------------------------------------------------------------- Kubernetes schemas

const dtsCache = new Map();

function resolveDts(fromFile, spec) {
  const candidates = [];
  if (spec.startsWith(".")) {
    const base = resolve(dirname(fromFile), spec.replace(/\.(m?js)$/, ""));
    candidates.push(`${base}.d.ts`, join(base, "index.d.ts"));
  } else {
    const parts = spec.split("/");
    const pkgLen = spec.startsWith("@") ? 2 : 1;
    const pkg = parts.slice(0, pkgLen).join("/");
    const rest = parts.slice(pkgLen).join("/").replace(/\.(m?js)$/, "");
    candidates.push(join(NM, pkg, `${rest}.d.ts`), join(NM, pkg, "dist", `${rest}.d.ts`));
  }
  return candidates.find((c) => existsSync(c)) ?? candidates[0];
}

function parseType(t, imports) {
  t = t.trim();
  let m = t.match(/^Array<([\s\S]+)>$/);
  if (m) return { array: parseType(m[1], imports) };
  m = t.match(/^\{\s*\[key: string\]:\s*([\s\S]+?);?\s*\}$/);
  if (m) return { map: parseType(m[1], imports) };
  if (/^[A-Za-z_]\w*$/.test(t) && imports.has(t)) return { ref: imports.get(t) };
  return { leaf: true };
}

// The properties of the interface a kubernetes-models declaration file
// describes: name -> type (a reference to another file, an array, a map, or
// a leaf). null for files that declare a plain type (IntOrString, Quantity).
function interfaceOf(file) {
  if (dtsCache.has(file)) return dtsCache.get(file);
  let result = null;
  if (existsSync(file)) {
    const src = readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\//g, "");
    const imports = new Map();
    for (const m of src.matchAll(/import\s*\{([^}]*)\}\s*from\s*"([^"]+)"/g)) {
      for (const item of m[1].split(",").map((s) => s.trim()).filter(Boolean)) {
        imports.set(item.split(/\s+as\s+/).pop(), resolveDts(file, m[2]));
      }
    }
    const im = src.match(/export interface \w+(?:\s+extends\s+[^{]+)?\s*\{/);
    if (im) {
      let i = im.index + im[0].length;
      const start = i;
      let depth = 1;
      while (depth > 0 && i < src.length) {
        if (src[i] === "{") depth++;
        else if (src[i] === "}") depth--;
        i++;
      }
      const body = src.slice(start, i - 1);
      const props = new Map();
      let d = 0;
      let cur = "";
      const add = () => {
        const m = cur.trim().match(/^"([^"]+)"\??\s*:\s*([\s\S]+)$/);
        if (m) props.set(m[1], parseType(m[2], imports));
        cur = "";
      };
      for (const ch of body) {
        if (ch === "{" || ch === "<") d++;
        if (ch === "}" || ch === ">") d--;
        if (ch === ";" && d === 0) add();
        else cur += ch;
      }
      add();
      result = { props };
    }
  }
  dtsCache.set(file, result);
  return result;
}

// Fields the schema does not know, as {path, msg}. (The OpenAPI schemas
// allow unknown fields; the API server drops them silently, so a typo such
// as readOnlyRootFileSystem would switch a protection off unseen.)
function unknownFields(value, type, path, out) {
  if (value === null || value === undefined) return;
  if (type.ref) {
    const iface = interfaceOf(type.ref);
    if (!iface || typeof value !== "object" || Array.isArray(value)) return;
    for (const [k, v] of Object.entries(value)) {
      const t = iface.props.get(k);
      if (!t) out.push({ path: [...path, k], msg: `unknown field "${k}"${suggest(k, iface.props.keys())}` });
      else unknownFields(v, t, [...path, k], out);
    }
  } else if (type.array && Array.isArray(value)) {
    value.forEach((v, i) => unknownFields(v, type.array, [...path, i], out));
  } else if (type.map && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) unknownFields(v, type.map, [...path, k], out);
  }
}

async function modelFor(apiVersion, kind) {
  if (typeof apiVersion !== "string" || typeof kind !== "string" || !/^[A-Za-z0-9.]+(\/[A-Za-z0-9]+)?$/.test(apiVersion)) return null;
  let mod;
  try {
    mod = await import(`kubernetes-models/${apiVersion}`);
  } catch {
    return null;
  }
  const cls = mod[kind];
  if (typeof cls !== "function") return null;
  return { cls, dts: resolveDts(join(NM, "kubernetes-models", apiVersion, "x.d.ts"), `./${kind}`) };
}

function lineOf(doc, lc, path) {
  for (let n = path.length; n >= 0; n--) {
    const prefix = path.slice(0, n);
    if (n === path.length && n > 0) {
      const parent = doc.getIn(prefix.slice(0, -1), true);
      if (YAML.isMap(parent)) {
        const pair = parent.items.find((p) => (YAML.isScalar(p.key) ? p.key.value : p.key) === prefix[n - 1]);
        if (pair?.key?.range) return lc.linePos(pair.key.range[0]).line;
      }
    }
    const node = n === 0 ? doc.contents : doc.getIn(prefix, true);
    if (node?.range) return lc.linePos(node.range[0]).line;
  }
  return 1;
}

function fmtPath(path) {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("") || "(document)";
}

function ajvPath(instancePath) {
  return instancePath.split("/").slice(1).map((p) => (/^\d+$/.test(p) ? Number(p) : p.replaceAll("~1", "/").replaceAll("~0", "~")));
}

// Parses and schema-checks every document of the YAML files under dir.
// Returns the objects for the cross-checks.
async function checkManifests(root, res) {
  const dir = join(root, "deploy/kubernetes");
  const objects = [];
  const files = walk(dir, (p) => /\.ya?ml$/.test(p));
  if (files.length === 0) res.check("kubernetes: manifests present", [`no YAML under ${relative(root, dir)}`]);
  for (const file of files) {
    const rel = relative(root, file);
    const src = readFileSync(file, "utf8");
    const lc = new YAML.LineCounter();
    const docs = YAML.parseAllDocuments(src, { version: "1.1", lineCounter: lc, uniqueKeys: true, prettyErrors: true });
    const errs = [];
    let count = 0;
    for (const doc of docs) {
      for (const e of doc.errors) errs.push(`${rel}: YAML: ${e.message.split("\n")[0]}`);
      for (const w of doc.warnings) errs.push(`${rel}: YAML warning: ${w.message.split("\n")[0]}`);
      if (doc.errors.length) continue;
      const obj = doc.toJS();
      if (obj === null || obj === undefined) continue;
      count++;
      const at = (path) => `${rel}:${lineOf(doc, lc, path)}`;
      if (typeof obj !== "object" || Array.isArray(obj)) {
        errs.push(`${at([])}: a document must be a mapping`);
        continue;
      }
      const id = `${obj.kind}/${obj.metadata?.name ?? "?"}`;
      if (String(obj.apiVersion ?? "").startsWith("kustomize.config.k8s.io/")) {
        objects.push({ file, rel, obj, at, kustomization: true });
        continue;
      }
      const model = await modelFor(obj.apiVersion, obj.kind);
      if (!model) {
        errs.push(`${at(["kind"])}: unknown kind "${obj.kind}" of apiVersion "${obj.apiVersion}" (no schema in kubernetes-models)`);
        continue;
      }
      try {
        new model.cls(obj).validate();
      } catch (e) {
        const list = Array.isArray(e.errors) ? e.errors : [{ instancePath: "", message: e.message }];
        for (const a of list) {
          const path = ajvPath(a.instancePath ?? "");
          let msg = a.message ?? String(a);
          if (a.params?.allowedValues) msg += `: ${a.params.allowedValues.join(", ")}`;
          errs.push(`${at(path)}: ${id}: ${fmtPath(path)}: ${msg}`);
        }
      }
      const unknown = [];
      unknownFields(obj, { ref: model.dts }, [], unknown);
      for (const u of unknown) errs.push(`${at(u.path)}: ${id}: ${fmtPath(u.path)}: ${u.msg}`);
      objects.push({ file, rel, obj, at, id });
    }
    res.check(`kubernetes: ${rel} (${count} document${count === 1 ? "" : "s"}, schema)`, errs);
  }
  return objects;
}

// ---------------------------------------------------------------- Kubernetes cross-checks

function podSpecOf(obj) {
  return ["Deployment", "StatefulSet", "DaemonSet", "Job"].includes(obj.kind) ? obj.spec?.template?.spec : null;
}

function matches(selector, labels) {
  return Object.entries(selector ?? {}).every(([k, v]) => labels?.[k] === v);
}

function crossCheck(objects, F, res) {
  const kinds = (k) => objects.filter((o) => o.obj.kind === k);
  const workloads = objects.filter((o) => podSpecOf(o.obj));
  const services = kinds("Service");
  const errs = [];
  const add = (o, path, msg) => errs.push(`${o.at(path)}: ${o.id}: ${msg}`);

  // Namespaces: every namespaced object in "callrec".
  for (const o of objects) {
    if (o.kustomization || o.obj.kind === "Namespace") continue;
    if (o.obj.metadata?.namespace !== NAMESPACE) add(o, ["metadata"], `metadata.namespace must be "${NAMESPACE}"`);
  }

  const configMaps = new Map(kinds("ConfigMap").map((o) => [o.obj.metadata.name, o.obj.data ?? {}]));
  const secrets = new Map(kinds("Secret").map((o) => [o.obj.metadata.name, { ...(o.obj.data ?? {}), ...(o.obj.stringData ?? {}) }]));
  const serviceAccounts = new Set(kinds("ServiceAccount").map((o) => o.obj.metadata.name));

  for (const w of workloads) {
    const spec = w.obj.spec;
    const tpl = spec.template ?? {};
    const pod = tpl.spec ?? {};
    const P = ["spec", "template", "spec"];
    if (!matches(spec.selector?.matchLabels, tpl.metadata?.labels)) add(w, ["spec", "selector"], "selector.matchLabels does not match the pod template's labels");
    if (pod.automountServiceAccountToken !== false) add(w, [...P], "automountServiceAccountToken must be false (callrec never calls the Kubernetes API)");
    if (pod.serviceAccountName && !serviceAccounts.has(pod.serviceAccountName)) add(w, [...P, "serviceAccountName"], `no ServiceAccount "${pod.serviceAccountName}"`);
    const psc = pod.securityContext ?? {};
    const volumes = new Map((pod.volumes ?? []).map((v) => [v.name, v]));
    for (const [vi, v] of (pod.volumes ?? []).entries()) {
      if (v.secret) {
        const s = secrets.get(v.secret.secretName);
        if (!s) add(w, [...P, "volumes", vi], `volume ${v.name}: no Secret "${v.secret.secretName}"`);
        for (const it of v.secret.items ?? []) if (s && !(it.key in s)) add(w, [...P, "volumes", vi], `volume ${v.name}: Secret ${v.secret.secretName} has no key "${it.key}"`);
      }
    }
    const claimTemplates = new Set((spec.volumeClaimTemplates ?? []).map((c) => c.metadata?.name));
    const all = [...(pod.initContainers ?? []).map((c, i) => ["initContainers", i, c]), ...(pod.containers ?? []).map((c, i) => ["containers", i, c])];
    for (const [list, i, c] of all) {
      const C = [...P, list, i];
      const sc = c.securityContext ?? {};
      const where = `container ${c.name}`;
      if ((sc.runAsNonRoot ?? psc.runAsNonRoot) !== true) add(w, C, `${where}: runAsNonRoot must be true`);
      const seccomp = (sc.seccompProfile ?? psc.seccompProfile)?.type;
      if (!["RuntimeDefault", "Localhost"].includes(seccomp)) add(w, C, `${where}: seccompProfile must be RuntimeDefault (or Localhost)`);
      if (sc.allowPrivilegeEscalation !== false) add(w, [...C, "securityContext"], `${where}: allowPrivilegeEscalation must be false`);
      if (sc.readOnlyRootFilesystem !== true) add(w, [...C, "securityContext"], `${where}: readOnlyRootFilesystem must be true`);
      if (sc.privileged === true) add(w, [...C, "securityContext"], `${where}: must not be privileged`);
      if (!(sc.capabilities?.drop ?? []).includes("ALL")) add(w, [...C, "securityContext"], `${where}: capabilities.drop must include ALL`);
      if ((sc.capabilities?.add ?? []).length) add(w, [...C, "securityContext"], `${where}: must add no capability`);
      const r = c.resources ?? {};
      for (const need of ["requests.cpu", "requests.memory", "limits.memory"]) {
        const [a, b] = need.split(".");
        if (r[a]?.[b] === undefined) add(w, [...C, "resources"], `${where}: resources.${need} must be set`);
      }
      if (list === "containers") {
        if (!c.livenessProbe) add(w, C, `${where}: needs a livenessProbe`);
        if (!c.readinessProbe) add(w, C, `${where}: needs a readinessProbe`);
      }
      const ports = new Set((c.ports ?? []).map((p) => p.name).filter(Boolean));
      for (const probe of ["livenessProbe", "readinessProbe", "startupProbe"]) {
        const port = c[probe]?.httpGet?.port ?? c[probe]?.tcpSocket?.port;
        if (typeof port === "string" && !ports.has(port)) add(w, [...C, probe], `${where}: ${probe} uses port "${port}", not a port of the container`);
      }
      for (const m of c.volumeMounts ?? []) {
        if (!volumes.has(m.name) && !claimTemplates.has(m.name)) add(w, [...C, "volumeMounts"], `${where}: volumeMount ${m.name} has no volume`);
      }
      for (const ef of c.envFrom ?? []) {
        if (ef.configMapRef && !configMaps.has(ef.configMapRef.name)) add(w, [...C, "envFrom"], `${where}: no ConfigMap "${ef.configMapRef.name}"`);
        if (ef.secretRef && !secrets.has(ef.secretRef.name)) add(w, [...C, "envFrom"], `${where}: no Secret "${ef.secretRef.name}"`);
      }
      for (const [ei, e] of (c.env ?? []).entries()) {
        const ref = e.valueFrom?.secretKeyRef;
        if (ref) {
          if (!secrets.has(ref.name)) add(w, [...C, "env", ei], `${where}: env ${e.name}: no Secret "${ref.name}"`);
          else if (!(ref.key in secrets.get(ref.name))) add(w, [...C, "env", ei], `${where}: env ${e.name}: Secret ${ref.name} has no key "${ref.key}"`);
        }
        const cref = e.valueFrom?.configMapKeyRef;
        if (cref && !(configMaps.get(cref.name) && cref.key in configMaps.get(cref.name))) add(w, [...C, "env", ei], `${where}: env ${e.name}: no key ${cref.key} in ConfigMap ${cref.name}`);
      }

      // Kubernetes expands $(VAR) in command and args only for variables
      // defined in env; any other stays literal.
      const defined = new Set((c.env ?? []).map((e) => e.name));
      for (const [ai, a] of [...(c.command ?? []), ...(c.args ?? [])].entries()) {
        for (const m of String(a).matchAll(/(?<!\$)\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)) {
          if (!defined.has(m[1])) add(w, [...C, ai < (c.command ?? []).length ? "command" : "args"], `${where}: $(${m[1]}) is not defined in the container's env, Kubernetes would pass it literally`);
        }
      }
      // callrec's own flags and variables.
      const cmdline = [...(c.command ?? []), ...(c.args ?? [])];
      const parsed = parseCallrecCommand(cmdline);
      if (parsed && F.known) {
        const env = (c.env ?? []).map((e) => e.name);
        for (const e of checkFlags(F, `${where} args`, parsed.cmd, parsed.flags, env)) add(w, [...C, "args"], e);
      }
      // Roles holding live calls drain before SIGTERM, for less than the grace period.
      const role = tpl.metadata?.labels?.["app.kubernetes.io/component"];
      if (DRAINING_ROLES.has(role) && list === "containers") {
        const hook = c.lifecycle?.preStop?.exec?.command ?? [];
        const words = hook.flatMap((h) => shellWords(h));
        const drain = parseCallrecCommand(words);
        if (!drain || drain.cmd !== "pool drain") {
          add(w, [...C, "lifecycle"], `${where}: a ${role} must run "callrec pool drain" in its preStop hook`);
        } else {
          if (F.known) for (const e of checkFlags(F, `${where} preStop`, drain.cmd, drain.flags)) add(w, [...C, "lifecycle"], e);
          const wi = words.findIndex((t) => /^--?wait(=|$)/.test(t));
          const wait = wi < 0 ? NaN : goDuration(words[wi].includes("=") ? words[wi].split("=")[1] : words[wi + 1]);
          const grace = pod.terminationGracePeriodSeconds ?? 30;
          if (!(wait > 0)) add(w, [...C, "lifecycle"], `${where}: the preStop drain needs --wait DURATION`);
          else if (grace < wait + 30) add(w, [...P, "terminationGracePeriodSeconds"], `terminationGracePeriodSeconds ${grace} must exceed the drain's --wait (${wait} s) by at least 30 s`);
        }
      }
    }
    if (w.obj.kind === "StatefulSet") {
      const svc = services.find((s) => s.obj.metadata.name === spec.serviceName);
      if (!svc) add(w, ["spec", "serviceName"], `no Service "${spec.serviceName}"`);
      else if (svc.obj.spec?.clusterIP !== "None") add(w, ["spec", "serviceName"], `Service ${spec.serviceName} must be headless (clusterIP: None)`);
    }
    if (tpl.metadata?.labels?.["app.kubernetes.io/component"] === "recorder") {
      if (w.obj.kind !== "StatefulSet") add(w, ["kind"], "recorders must be a StatefulSet (node ids come from pod ordinals)");
      if (spec.podManagementPolicy !== "Parallel") add(w, ["spec"], "recorders: podManagementPolicy must be Parallel");
      if (!(spec.volumeClaimTemplates ?? []).length) add(w, ["spec"], "recorders need volumeClaimTemplates for their data");
    }
  }

  // Services select pods and name their ports.
  for (const s of services) {
    const sel = s.obj.spec?.selector;
    if (!sel) continue;
    const targets = workloads.filter((w) => matches(sel, w.obj.spec.template?.metadata?.labels));
    if (targets.length === 0) {
      add(s, ["spec", "selector"], "selects no workload's pods");
      continue;
    }
    for (const [pi, p] of (s.obj.spec.ports ?? []).entries()) {
      if (typeof p.targetPort !== "string") continue;
      const ok = targets.some((w) => (w.obj.spec.template.spec.containers ?? []).some((c) => (c.ports ?? []).some((cp) => cp.name === p.targetPort && (cp.protocol ?? "TCP") === (p.protocol ?? "TCP"))));
      if (!ok) add(s, ["spec", "ports", pi], `targetPort "${p.targetPort}" (${p.protocol ?? "TCP"}) is no port of the selected pods`);
    }
  }
  // The pool's seed Service: headless, publishing not-ready pods, named by CALLREC_POOL_SEEDS.
  for (const [name, data] of configMaps) {
    const seeds = data.CALLREC_POOL_SEEDS;
    if (!seeds) continue;
    const cm = kinds("ConfigMap").find((o) => o.obj.metadata.name === name);
    for (const seed of seeds.split(",")) {
      const host = seed.trim().split(":")[0];
      const svc = services.find((s) => host === s.obj.metadata.name || host.startsWith(`${s.obj.metadata.name}.${NAMESPACE}.`));
      if (!svc) add(cm, ["data", "CALLREC_POOL_SEEDS"], `seed ${seed} names no Service of this deployment`);
      else if (svc.obj.spec?.clusterIP !== "None" || svc.obj.spec?.publishNotReadyAddresses !== true) add(svc, ["spec"], "the pool seed Service must be headless with publishNotReadyAddresses: true");
    }
  }
  for (const p of kinds("PodDisruptionBudget")) {
    if (!workloads.some((w) => matches(p.obj.spec?.selector?.matchLabels, w.obj.spec.template?.metadata?.labels))) add(p, ["spec", "selector"], "selects no workload's pods");
  }
  for (const n of kinds("NetworkPolicy")) {
    const sel = n.obj.spec?.podSelector?.matchLabels;
    if (sel && Object.keys(sel).length && !workloads.some((w) => matches(sel, w.obj.spec.template?.metadata?.labels))) add(n, ["spec", "podSelector"], "selects no workload's pods");
  }
  for (const ing of kinds("Ingress")) {
    for (const [ri, rule] of (ing.obj.spec?.rules ?? []).entries()) {
      for (const [pi, path] of (rule.http?.paths ?? []).entries()) {
        const b = path.backend?.service;
        if (!b) continue;
        const svc = services.find((s) => s.obj.metadata.name === b.name);
        const at = ["spec", "rules", ri, "http", "paths", pi, "backend"];
        if (!svc) add(ing, at, `backend Service "${b.name}" does not exist`);
        else if (!(svc.obj.spec.ports ?? []).some((p) => (b.port?.name !== undefined ? p.name === b.port.name : p.port === b.port?.number))) add(ing, at, `Service ${b.name} has no port ${b.port?.name ?? b.port?.number}`);
      }
    }
  }
  // Shared variables in ConfigMaps must be callrec flags.
  if (F.known) {
    for (const cm of kinds("ConfigMap")) {
      for (const e of checkSharedEnv(F, `ConfigMap ${cm.obj.metadata.name}`, Object.keys(cm.obj.data ?? {}))) add(cm, ["data"], e);
    }
  }
  res.check("kubernetes: references between objects, hardening, resources, drain", errs);
  if (!F.known) res.skip("kubernetes: callrec flags in args, env and ConfigMap", "no Go toolchain to build callrec and read its --help");
}

function checkKustomization(root, objects, res) {
  const errs = [];
  const dir = join(root, "deploy/kubernetes");
  const k = objects.find((o) => o.kustomization && basename(o.file) === "kustomization.yaml");
  if (!k) {
    res.check("kubernetes: kustomization.yaml", ["deploy/kubernetes/kustomization.yaml is missing"]);
    return;
  }
  const K = k.obj;
  const allowed = new Set(["apiVersion", "kind", "namespace", "labels", "commonLabels", "commonAnnotations", "resources", "images", "patches", "configMapGenerator", "secretGenerator", "generatorOptions", "replicas", "components", "namePrefix", "nameSuffix"]);
  for (const key of Object.keys(K)) if (!allowed.has(key)) errs.push(`${k.at([key])}: unknown field "${key}"${suggest(key, allowed)}`);
  if (K.kind !== "Kustomization") errs.push(`${k.at(["kind"])}: kind must be Kustomization`);
  if (K.namespace !== NAMESPACE) errs.push(`${k.at(["namespace"])}: namespace must be ${NAMESPACE}`);
  const listed = new Set();
  for (const [i, r] of (K.resources ?? []).entries()) {
    const p = resolve(dir, r);
    listed.add(p);
    if (!existsSync(p)) errs.push(`${k.at(["resources", i])}: resource ${r} does not exist`);
  }
  for (const f of walk(dir, (p) => /\.ya?ml$/.test(p))) {
    if (basename(f) === "kustomization.yaml" || /\.example\.ya?ml$/.test(f)) continue;
    if (!listed.has(f)) errs.push(`${relative(root, f)} is not listed in kustomization.yaml resources (name it *.example.yaml if it must not be applied)`);
  }
  const imageNames = new Set((K.images ?? []).map((i) => i.name));
  for (const o of objects) {
    const pod = podSpecOf(o.obj);
    for (const c of [...(pod?.containers ?? []), ...(pod?.initContainers ?? [])]) {
      const name = String(c.image ?? "").split(/[:@]/)[0];
      if (!imageNames.has(name)) errs.push(`${o.at(["spec"])}: ${o.id}: image ${c.image} has no entry in kustomization.yaml images`);
    }
  }
  // The example Secret carries placeholders only.
  for (const o of objects.filter((x) => x.obj.kind === "Secret")) {
    if (!/\.example\.ya?ml$/.test(o.file)) errs.push(`${o.at([])}: ${o.id}: Secrets belong in *.example.yaml files with placeholders, never with real values`);
    for (const [key, v] of Object.entries(o.obj.stringData ?? {})) {
      if (!/PLACEHOLDER|x{16,}/i.test(String(v))) errs.push(`${o.at(["stringData", key])}: ${o.id}: ${key} does not look like a placeholder`);
    }
  }
  res.check("kubernetes: kustomization.yaml and the example Secret", errs);
}

// ---------------------------------------------------------------- systemd

function parseUnit(text) {
  const joined = text.replace(/\\\n/g, " ");
  const sections = {};
  let cur = null;
  for (const raw of joined.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    const s = line.match(/^\[(.+)\]$/);
    if (s) {
      cur = sections[s[1]] ??= {};
      continue;
    }
    const m = line.match(/^([A-Za-z]+)\s*=\s*(.*)$/);
    if (m && cur) (cur[m[1]] ??= []).push(m[2]);
  }
  return sections;
}

function checkSystemd(root, F, res) {
  const dir = join(root, "deploy/systemd");
  const units = walk(dir, (p) => p.endsWith(".service"));
  if (units.length === 0) {
    res.check("systemd: units present", ["no .service files in deploy/systemd"]);
    return;
  }
  const required = {
    NoNewPrivileges: (v) => v === "yes",
    ProtectSystem: (v) => v === "strict",
    ProtectHome: (v) => v === "yes",
    PrivateTmp: (v) => v === "yes",
    PrivateDevices: (v) => v === "yes",
    CapabilityBoundingSet: (v) => v === "",
    RestrictAddressFamilies: (v) => v !== "",
    MemoryDenyWriteExecute: (v) => v === "yes",
    SystemCallFilter: (v) => v.includes("@system-service"),
    Restart: (v) => v === "on-failure",
    LimitNOFILE: (v) => Number(v) >= 16384,
    TimeoutStopSec: (v) => !Number.isNaN(systemdSeconds(v)),
  };
  for (const file of units) {
    const rel = relative(root, file);
    const u = parseUnit(readFileSync(file, "utf8"));
    const svc = u.Service ?? {};
    const errs = [];
    const one = (k) => (svc[k] ?? []).at(-1);
    for (const [k, ok] of Object.entries(required)) {
      const vals = svc[k] ?? [];
      if (!vals.length || !vals.some((v) => ok(v.trim()))) errs.push(`[Service] ${k}= is missing or weak (${vals.join(" / ") || "unset"})`);
    }
    if (!svc.User && one("DynamicUser") !== "yes") errs.push("[Service] needs User= or DynamicUser=yes");
    if (!(svc.EnvironmentFile ?? []).includes("/etc/callrec/callrec.env")) errs.push("[Service] EnvironmentFile=/etc/callrec/callrec.env is missing");
    if (!u.Install?.WantedBy) errs.push("[Install] WantedBy= is missing");
    const start = parseCallrecCommand(shellWords(one("ExecStart") ?? ""));
    if (!start) {
      errs.push("ExecStart= does not run callrec");
    } else {
      if (F.known) errs.push(...checkFlags(F, "ExecStart", start.cmd, start.flags, (svc.Environment ?? []).flatMap((e) => shellWords(e).map((kv) => kv.split("=")[0]))));
      const dataDir = (one("ExecStart").match(/--data-dir[= ](\S+)/) ?? [])[1];
      if (dataDir) {
        const rw = (svc.ReadWritePaths ?? []).flatMap((v) => v.split(/\s+/));
        if (!rw.includes(dataDir)) errs.push(`ReadWritePaths= must include the data dir ${dataDir}`);
        const state = (svc.StateDirectory ?? []).flatMap((v) => v.split(/\s+/)).map((s) => `/var/lib/${s}`);
        if (!state.includes(dataDir)) errs.push(`StateDirectory= should create the data dir ${dataDir}`);
      }
      if (DRAINING_ROLES.has(start.cmd)) {
        const stopWords = shellWords(one("ExecStop") ?? "");
        const stop = parseCallrecCommand(stopWords);
        if (!stop || stop.cmd !== "pool drain") errs.push(`a ${start.cmd} must drain in ExecStop= (callrec pool drain)`);
        else {
          if (F.known) errs.push(...checkFlags(F, "ExecStop", stop.cmd, stop.flags));
          const w = stopWords.find((t) => /^--?wait=/.test(t));
          const wait = w ? goDuration(w.split("=")[1]) : NaN;
          const timeout = systemdSeconds(one("TimeoutStopSec") ?? "");
          if (!(wait > 0)) errs.push("the ExecStop drain needs --wait=DURATION");
          else if (!(timeout >= wait + 30)) errs.push(`TimeoutStopSec= (${one("TimeoutStopSec")}) must exceed the drain's --wait (${wait} s) by at least 30 s`);
          const name = stopWords.at(-1);
          if (!one("ExecStart").includes(`--pool-name=${name}`)) errs.push(`ExecStop drains "${name}" but ExecStart does not run with --pool-name=${name}`);
        }
      }
    }
    res.check(`systemd: ${rel} (directives${F.known ? ", flags" : ""})`, errs);
  }

  // The example environment file: KEY=VALUE lines of known variables.
  const envFile = join(dir, "callrec.env.example");
  if (existsSync(envFile)) {
    const errs = [];
    const names = [];
    for (const [i, raw] of readFileSync(envFile, "utf8").split("\n").entries()) {
      const line = raw.trim();
      if (!line || line.startsWith("#")) continue;
      const m = line.match(/^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/);
      if (!m) errs.push(`line ${i + 1}: not KEY=VALUE: ${line}`);
      else names.push(m[1]);
      if (m && m[1] === "CALLREC_POOL_BIND") errs.push(`line ${i + 1}: CALLREC_POOL_BIND must not be shared: each unit binds its own port`);
    }
    if (F.known) errs.push(...checkSharedEnv(F, "callrec.env.example", names));
    res.check(`systemd: ${relative(root, envFile)}`, errs);
  } else {
    res.check("systemd: callrec.env.example", ["deploy/systemd/callrec.env.example is missing"]);
  }

  const analyze = which("systemd-analyze");
  if (!analyze) {
    res.skip("systemd: systemd-analyze verify", "systemd-analyze not found (Debian package systemd)");
    return;
  }
  const tmp = mkdtempSync(join(tmpdir(), "callrec-units-"));
  try {
    // The real binary path need not exist here: point ExecStart at a stub.
    const stub = join(tmp, "callrec");
    writeFileSync(stub, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    const names = [];
    for (const file of units) {
      let text = readFileSync(file, "utf8").replaceAll("/usr/local/bin/callrec", stub);
      let name = basename(file);
      writeFileSync(join(tmp, name), text);
      if (name.endsWith("@.service")) {
        name = name.replace("@.service", "@1.service");
        writeFileSync(join(tmp, name), text);
      }
      names.push(name);
    }
    const r = spawnSync(analyze, ["verify", "--man=no", ...names.map((n) => `./${n}`)], { cwd: tmp, encoding: "utf8" });
    const out = `${r.stdout}\n${r.stderr}`.split("\n").map((l) => l.trim()).filter(Boolean).map((l) => l.replaceAll(`${tmp}/`, "deploy/systemd/").replaceAll(stub, "/usr/local/bin/callrec"));
    const errs = out.length || r.status !== 0 ? [...out, ...(r.status !== 0 ? [`systemd-analyze exited ${r.status}`] : [])] : [];
    res.check(`systemd: systemd-analyze verify (${names.length} units)`, errs);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- nginx, HAProxy

function toolPath(name) {
  const local = join(HERE, ".tools/usr/sbin", name);
  if (existsSync(local)) return { bin: local, local: true };
  const sys = which(name) ?? (existsSync(`/usr/sbin/${name}`) ? `/usr/sbin/${name}` : null);
  return sys ? { bin: sys, local: false } : null;
}

function toolEnv(tool) {
  if (!tool.local) return process.env;
  const libs = walk(join(HERE, ".tools/usr/lib"), (p) => /\.so(\.|$)/.test(p)).map((p) => dirname(p));
  return { ...process.env, LD_LIBRARY_PATH: [...new Set(libs), process.env.LD_LIBRARY_PATH].filter(Boolean).join(":") };
}

function testCert(tmp) {
  const openssl = which("openssl");
  if (!openssl) return null;
  const key = join(tmp, "test.key");
  const crt = join(tmp, "test.crt");
  const r = spawnSync(openssl, ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=callrec-deploy-test"], { encoding: "utf8" });
  return r.status === 0 ? { key, crt } : null;
}

// The configs name real hosts and certificate files: in a copy, hosts become
// 127.0.0.1 and certificates a throwaway self-signed one.
const LOCALIZE_HOSTS = (s) => s.replace(/[a-z0-9.-]+\.example\.internal/g, "127.0.0.1");

function checkNginx(root, res) {
  const dir = join(root, "deploy/nginx");
  const confs = walk(dir, (p) => p.endsWith(".conf"));
  if (!confs.length) {
    res.check("nginx: configs present", ["no .conf in deploy/nginx"]);
    return;
  }
  const tool = toolPath("nginx");
  if (!tool) {
    res.skip("nginx: nginx -t", "nginx not found (test/deploy/fetch-tools.sh fetches it)");
    return;
  }
  const tmp = mkdtempSync(join(tmpdir(), "callrec-nginx-"));
  try {
    const cert = testCert(tmp);
    if (!cert) {
      res.skip("nginx: nginx -t", "openssl not found to make a test certificate");
      return;
    }
    // callrec-common.conf first: it defines what the others use.
    confs.sort((a, b) => (basename(a).includes("common") ? -1 : 0) - (basename(b).includes("common") ? -1 : 0));
    const includes = [];
    for (const f of confs) {
      const text = LOCALIZE_HOSTS(readFileSync(f, "utf8"))
        .replace(/(ssl_certificate_key\s+)[^;]+;/g, `$1${cert.key};`)
        .replace(/(ssl_certificate\s+)[^;]+;/g, `$1${cert.crt};`)
        .replace(/\/var\/log\/nginx\//g, `${tmp}/`);
      const out = join(tmp, basename(f));
      writeFileSync(out, text);
      includes.push(`  include ${out};`);
    }
    const main = join(tmp, "nginx.conf");
    const temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `  ${t}_temp_path ${tmp}/${t};`).join("\n");
    writeFileSync(main, `pid ${tmp}/nginx.pid;\nerror_log stderr;\nevents { worker_connections 1024; }\nhttp {\n${temp}\n  access_log off;\n${includes.join("\n")}\n}\n`);
    const r = spawnSync(tool.bin, ["-t", "-q", "-p", tmp, "-c", main, "-e", "stderr"], { encoding: "utf8", env: toolEnv(tool) });
    const out = `${r.stdout}\n${r.stderr}`.split("\n").map((l) => l.trim()).filter(Boolean).map((l) => l.replaceAll(`${tmp}/`, "deploy/nginx/"));
    res.check(`nginx: nginx -t (${confs.map((f) => basename(f)).join(", ")})`, r.status === 0 && !out.some((l) => /\[(warn|emerg|alert|crit|error)\]/.test(l)) ? [] : out.length ? out : [`nginx -t exited ${r.status}`]);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function checkHAProxy(root, res) {
  const cfgs = walk(join(root, "deploy/haproxy"), (p) => p.endsWith(".cfg"));
  if (!cfgs.length) {
    res.check("haproxy: configs present", ["no .cfg in deploy/haproxy"]);
    return;
  }
  const tool = toolPath("haproxy");
  if (!tool) {
    res.skip("haproxy: haproxy -c", "haproxy not found (test/deploy/fetch-tools.sh fetches it)");
    return;
  }
  const tmp = mkdtempSync(join(tmpdir(), "callrec-haproxy-"));
  try {
    const cert = testCert(tmp);
    if (!cert) {
      res.skip("haproxy: haproxy -c", "openssl not found to make a test certificate");
      return;
    }
    mkdirSync(join(tmp, "certs"));
    writeFileSync(join(tmp, "certs", "test.pem"), readFileSync(cert.crt, "utf8") + readFileSync(cert.key, "utf8"));
    for (const f of cfgs) {
      const out = join(tmp, basename(f));
      writeFileSync(out, LOCALIZE_HOSTS(readFileSync(f, "utf8")).replace(/\/etc\/haproxy\/certs\//g, `${tmp}/certs/`));
      // -dW: any warning fails, as an error would.
      const r = spawnSync(tool.bin, ["-dW", "-c", "-f", out], { encoding: "utf8", env: toolEnv(tool) });
      const lines = `${r.stdout}\n${r.stderr}`.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("[NOTICE]") && l !== "Configuration file is valid").map((l) => l.replaceAll(`${tmp}/`, "deploy/haproxy/"));
      res.check(`haproxy: haproxy -c ${relative(root, f)}`, r.status === 0 && !lines.length ? [] : lines.length ? lines : [`haproxy -c exited ${r.status}`]);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- metrics

const PROMQL_WORDS = new Set(["by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "inf", "nan", "le"]);

// The metric names of a PromQL expression (simple: identifiers that are not
// functions, keywords, label names in by/on clauses, or inside strings,
// label matchers and ranges).
function metricNames(expr) {
  let s = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, " ");
  s = s.replace(/\{[^}]*\}/g, " ").replace(/\[[^\]]*\]/g, " ");
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ");
  s = s.replace(/\$\{?\w+\}?/g, " ");
  const names = new Set();
  for (const m of s.matchAll(/(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w.])(\s*\()?/g)) {
    if (m[2]) continue; // a function call
    if (PROMQL_WORDS.has(m[1].toLowerCase())) continue;
    if (/^\d/.test(m[1])) continue;
    names.add(m[1]);
  }
  return names;
}

// The metric names callrec registers, read from the Go code of the real
// repository (also when the self-test validates a copy of deploy/ alone).
function knownMetrics() {
  const code = new Set();
  for (const f of walk(REPO, (p) => p.endsWith(".go") && !p.endsWith("_test.go"))) {
    for (const m of readFileSync(f, "utf8").matchAll(/(?:Name:\s*|NewDesc\(\s*)"(callrec_[a-z0-9_]+)"/g)) code.add(m[1]);
  }
  const extra = new Set();
  const upcoming = new Set();
  let section = extra;
  for (const raw of readFileSync(join(HERE, "metrics-extra.txt"), "utf8").split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    if (line === "[upcoming]") {
      section = upcoming;
      continue;
    }
    section.add(line);
  }
  const all = new Set();
  for (const n of [...code, ...extra, ...upcoming]) for (const suffix of ["", "_bucket", "_sum", "_count"]) all.add(n + suffix);
  return { code, upcoming, all };
}

function baseMetric(n) {
  return n.replace(/_(bucket|sum|count)$/, "");
}

function checkDashboards(root, res) {
  const M = knownMetrics();
  for (const n of M.upcoming) if (M.code.has(n)) res.note(`metrics-extra.txt: upcoming metric ${n} is now registered in the code; move it out of [upcoming]`);
  const files = walk(join(root, "deploy/grafana"), (p) => p.endsWith(".json"));
  if (!files.length) res.check("grafana: dashboards present", ["no .json in deploy/grafana"]);
  for (const file of files) {
    const rel = relative(root, file);
    const errs = [];
    let d;
    try {
      d = JSON.parse(readFileSync(file, "utf8"));
    } catch (e) {
      res.check(`grafana: ${rel}`, [`not valid JSON: ${e.message}`]);
      continue;
    }
    if (!Number.isInteger(d.schemaVersion)) errs.push("schemaVersion must be an integer");
    for (const k of ["title", "uid"]) if (typeof d[k] !== "string" || !d[k]) errs.push(`${k} must be a non-empty string`);
    const vars = new Map((d.templating?.list ?? []).map((v) => [v.name, v]));
    for (const v of ["datasource", "role", "instance"]) if (!vars.has(v)) errs.push(`templating needs a "${v}" variable`);
    for (const v of vars.values()) {
      const q = typeof v.query === "string" ? v.query : v.query?.query;
      const m = typeof q === "string" ? q.match(/^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)/) : null;
      if (m && !M.all.has(m[1])) errs.push(`variable ${v.name}: unknown metric ${m[1]}`);
    }
    const panels = [];
    const flat = (list) => {
      for (const p of list ?? []) {
        panels.push(p);
        flat(p.panels);
      }
    };
    flat(d.panels);
    const ids = new Set();
    let exprs = 0;
    for (const p of panels) {
      const name = `panel ${p.id} "${p.title}"`;
      if (!Number.isInteger(p.id)) errs.push(`${name}: id must be an integer`);
      else if (ids.has(p.id)) errs.push(`${name}: duplicate id`);
      ids.add(p.id);
      if (!p.gridPos || !["h", "w", "x", "y"].every((k) => Number.isInteger(p.gridPos[k]))) errs.push(`${name}: gridPos needs integer h, w, x, y`);
      else if (p.gridPos.x + p.gridPos.w > 24) errs.push(`${name}: gridPos is wider than the 24 columns`);
      if (!p.type) errs.push(`${name}: no type`);
      let usesUpcoming = false;
      for (const t of p.targets ?? []) {
        if (typeof t.expr !== "string") continue;
        exprs++;
        for (const n of metricNames(t.expr)) {
          if (!M.all.has(n)) errs.push(`${name} ${t.refId}: unknown metric ${n}${suggest(n, M.all)}`);
          if (M.upcoming.has(baseMetric(n)) && !M.code.has(baseMetric(n))) usesUpcoming = true;
        }
      }
      if (usesUpcoming && !/upcoming/i.test(p.description ?? "")) errs.push(`${name}: uses an upcoming metric but its description does not say UPCOMING`);
    }
    if (exprs === 0) errs.push("no PromQL expression in any panel");
    res.check(`grafana: ${rel} (${panels.length} panels, ${exprs} queries)`, errs);
  }
  for (const file of walk(join(root, "deploy/prometheus"), (p) => /\.ya?ml$/.test(p))) {
    const rel = relative(root, file);
    const doc = YAML.parseDocument(readFileSync(file, "utf8"), { uniqueKeys: true });
    const errs = doc.errors.map((e) => `YAML: ${e.message.split("\n")[0]}`);
    if (!errs.length) {
      const obj = doc.toJS() ?? {};
      for (const g of obj.groups ?? []) {
        for (const r of g.rules ?? []) {
          if (typeof r.expr !== "string") {
            errs.push(`rule ${r.alert ?? r.record}: no expr`);
            continue;
          }
          for (const n of metricNames(r.expr)) if (!M.all.has(n) || (M.upcoming.has(baseMetric(n)) && !M.code.has(baseMetric(n)))) errs.push(`rule ${r.alert ?? r.record}: unknown metric ${n}${suggest(n, M.all)}`);
        }
      }
      for (const sc of obj.scrape_configs ?? []) if (!sc.job_name) errs.push("a scrape config without job_name");
    }
    res.check(`prometheus: ${rel}`, errs);
  }
}

// ---------------------------------------------------------------- main

async function validate(root, res, F, only = null) {
  const want = (k) => only === null || only === k;
  if (want("kubernetes") || want("cross")) {
    const objects = await checkManifests(root, res);
    if (want("kubernetes") || want("cross")) {
      crossCheck(objects, F, res);
      checkKustomization(root, objects, res);
    }
  }
  if (want("systemd")) checkSystemd(root, F, res);
  if (want("nginx")) checkNginx(root, res);
  if (want("haproxy")) checkHAProxy(root, res);
  if (want("grafana")) checkDashboards(root, res);
}

// Each case breaks one thing in a copy of deploy/ and names the checker that
// must catch it and a piece of the message it must give.
const SELF_TEST = [
  { name: "YAML syntax error", file: "kubernetes/tracker.yaml", from: "  replicas: 1\n", to: "  replicas: 1\n   strategy: x\n", only: "kubernetes", expect: "YAML" },
  { name: "wrong type (port as a string)", file: "kubernetes/recorder.yaml", from: "containerPort: 8090", to: 'containerPort: "8090"', only: "kubernetes", expect: "must be integer" },
  { name: "value outside an enum", file: "kubernetes/lb.yaml", from: "type: LoadBalancer", to: "type: LoadBalancr", only: "kubernetes", expect: "allowed values" },
  { name: "missing required field", file: "kubernetes/tracker.yaml", from: "        - name: tracker\n", to: "        - stdin: false\n", only: "kubernetes", expect: "must have required property name" },
  { name: "unknown field (typo)", file: "kubernetes/recorder.yaml", from: "readOnlyRootFilesystem: true", to: "readOnlyRootFileSystem: true", only: "kubernetes", expect: 'did you mean "readOnlyRootFilesystem"' },
  { name: "unknown kind", file: "kubernetes/mediaadapter.yaml", from: "kind: Deployment", to: "kind: Deploymnet", only: "kubernetes", expect: "unknown kind" },
  { name: "hardening weakened", file: "kubernetes/mediaadapter.yaml", from: "allowPrivilegeEscalation: false", to: "allowPrivilegeEscalation: true", only: "cross", expect: "allowPrivilegeEscalation must be false" },
  { name: "Service selecting nothing", file: "kubernetes/tracker.yaml", from: "    app.kubernetes.io/component: tracker\n  ports:", to: "    app.kubernetes.io/component: trackr\n  ports:", only: "cross", expect: "selects no workload" },
  { name: "Secret key that does not exist", file: "kubernetes/recorder.yaml", from: "key: ingest-token", to: "key: ingest-tokn", only: "cross", expect: 'has no key "ingest-tokn"' },
  { name: "grace period shorter than the drain", file: "kubernetes/recorder.yaml", from: "terminationGracePeriodSeconds: 7500", to: "terminationGracePeriodSeconds: 600", only: "cross", expect: "must exceed the drain" },
  { name: "resource missing from kustomization", file: "kubernetes/kustomization.yaml", from: "  - ingress.yaml\n", to: "", only: "cross", expect: "not listed in kustomization.yaml" },
  { name: "$(VAR) in args without an env entry", file: "kubernetes/lb.yaml", from: "- --pool-name=$(POD_NAME)", to: "- --pool-name=$(POD_NAM)", only: "cross", expect: "$(POD_NAM) is not defined" },
  { name: "flag that does not exist", file: "kubernetes/tracker.yaml", from: "--http-addr=:8084", to: "--http-adr=:8084", only: "cross", expect: "has no flag --http-adr", needsFlags: true },
  { name: "ConfigMap variable that is no flag", file: "kubernetes/configmap.yaml", from: "CALLREC_SECURE_COOKIES:", to: "CALLREC_SECURE_COOKIE:", only: "cross", expect: "CALLREC_SECURE_COOKIE is no callrec flag", needsFlags: true },
  { name: "systemd directive with a bad value", file: "systemd/callrec-tracker.service", from: "ProtectSystem=strict", to: "ProtectSystem=strickt", only: "systemd", expect: "ProtectSystem" },
  { name: "systemd unknown directive", file: "systemd/callrec-lb.service", from: "PrivateTmp=yes", to: "PrivateTmp=yes\nPrivateTemp=yes", only: "systemd", expect: "Unknown key", needsTool: "systemd-analyze" },
  { name: "nginx unknown directive", file: "nginx/callrec-media.conf", from: "least_conn;", to: "least_con;", only: "nginx", expect: "least_con", needsTool: "nginx" },
  { name: "HAProxy unknown algorithm", file: "haproxy/haproxy.cfg", from: "balance leastconn", to: "balance leastcon", only: "haproxy", expect: "leastcon", needsTool: "haproxy" },
  { name: "dashboard metric typo", file: "grafana/callrec.json", from: "sum(callrec_media_streams_active{", to: "sum(callrec_media_streams_actve{", only: "grafana", expect: "unknown metric callrec_media_streams_actve" },
  { name: "dashboard not JSON", file: "grafana/callrec.json", from: '"title": "callrec",', to: '"title": "callrec",,', only: "grafana", expect: "not valid JSON" },
];

async function selfTest(F, res) {
  const toolFor = { nginx: () => toolPath("nginx") && which("openssl"), haproxy: () => toolPath("haproxy") && which("openssl"), "systemd-analyze": () => which("systemd-analyze") };
  const base = mkdtempSync(join(tmpdir(), "callrec-deploy-selftest-"));
  try {
    for (const c of SELF_TEST) {
      const name = `self-test: ${c.name} is caught`;
      if (c.needsFlags && !F.known) {
        res.skip(name, "no Go toolchain to read callrec --help");
        continue;
      }
      if (c.needsTool && !toolFor[c.needsTool]()) {
        res.skip(name, `${c.needsTool} not available`);
        continue;
      }
      const root = join(base, String(SELF_TEST.indexOf(c)));
      cpSync(join(REPO, "deploy"), join(root, "deploy"), { recursive: true });
      const file = join(root, "deploy", c.file);
      const text = readFileSync(file, "utf8");
      if (!text.includes(c.from)) {
        res.check(name, [`the text to break is no longer in deploy/${c.file}: ${JSON.stringify(c.from)}`]);
        continue;
      }
      writeFileSync(file, text.replace(c.from, c.to));
      const inner = new Results(true);
      await validate(root, inner, F, c.only);
      const errs = [];
      if (inner.failed === 0) errs.push(`deploy/${c.file} was broken (${JSON.stringify(c.to.trim())}) and no check failed`);
      else if (!inner.errors.some((e) => e.includes(c.expect))) errs.push(`expected a message containing ${JSON.stringify(c.expect)}, got:\n        ${inner.errors.join("\n        ")}`);
      res.check(name, errs);
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

async function main() {
  const args = new Set(process.argv.slice(2));
  const unknown = [...args].filter((a) => !["--self-test", "--no-self-test"].includes(a));
  if (unknown.length) {
    console.error(`usage: node test/deploy/validate.mjs [--self-test | --no-self-test]\nunknown: ${unknown.join(" ")}`);
    process.exit(2);
  }
  if (!existsSync(join(NM, "kubernetes-models")) || !existsSync(join(NM, "yaml"))) {
    console.error("test/deploy: run `npm ci --prefix test/deploy` first (make test-deps)");
    process.exit(2);
  }
  const res = new Results();
  const F = loadFlags(res);
  if (!args.has("--self-test")) {
    console.log("== deploy/ validation");
    await validate(REPO, res, F);
  }
  if (!args.has("--no-self-test")) {
    console.log("== self-test: each deliberate break in a copy of deploy/ must be caught");
    await selfTest(F, res);
  }
  for (const n of res.notes) console.log(`note  ${n}`);
  console.log(`deploy: ${res.passed} passed, ${res.failed} failed, ${res.skipped} skipped`);
  process.exit(res.failed ? 1 : 0);
}

await main();
