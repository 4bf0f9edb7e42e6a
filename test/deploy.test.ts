// deploy/: the Kubernetes manifests read with a strict YAML subset reader (test/yaml-subset.ts), checked for what
// the README promises (kinds, probes on the container's port, a grace period above the drain, resource limits
// for --workers auto, args tsgunicorn accepts), and the Dockerfile against them.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { resolveSettings } from '../src/config.ts';
import { SETTINGS } from '../src/settings.ts';
import { ROOT, tempDir } from './helpers.ts';
import { parseYamlDocuments, type YamlValue } from './yaml-subset.ts';

// The manifests are walked by the paths the checks name; a missing one fails the assertion that reads it.
// deno-lint-ignore no-explicit-any
type Tree = Record<string, any>;

const DEPLOY = path.join(ROOT, 'deploy');
const read = (file: string) => fs.readFileSync(path.join(DEPLOY, file), 'utf8');
const manifests = ['kubernetes/deployment.yaml', 'kubernetes/service.yaml'].flatMap((file) => parseYamlDocuments(read(file)) as Tree[]);
const byKind = (kind: string) => {
  const found = manifests.filter((doc) => doc.kind === kind);
  assert.equal(found.length, 1, `one ${kind}`);
  return found[0];
};
const deployment = byKind('Deployment');
const service = byKind('Service');
const pod = deployment.spec.template.spec as Tree;
const [container] = pod.containers as Tree[];
const args = container.args as string[];
const containerPort = (container.ports as Tree[])[0].containerPort as number;

/** A probe's or Service's port (a number, or the name of one of the container's ports) as a number. */
function portNumber(port: number | string): number | undefined {
  if (typeof port === 'number') return port;
  return (container.ports as Tree[]).find((entry) => entry.name === port)?.containerPort;
}

/** The value after `flag` in the args (tsgunicorn's long form), or undefined. */
function argValue(flag: string): string | undefined {
  const at = args.indexOf(flag);
  return at >= 0 ? args[at + 1] : undefined;
}

const hasPreStopDelay = SETTINGS.some((spec) => spec.flag === 'pre-stop-delay');

describe('deploy/: Kubernetes manifests', () => {
  it('are a Deployment (apps/v1) and a Service (v1) that select the pods', () => {
    assert.equal(deployment.apiVersion, 'apps/v1');
    assert.equal(service.apiVersion, 'v1');
    const podLabels = deployment.spec.template.metadata.labels as Tree;
    for (const selector of [deployment.spec.selector.matchLabels, service.spec.selector] as Tree[]) {
      for (const [key, value] of Object.entries(selector)) assert.equal(podLabels[key], value, `selector ${key}`);
    }
    assert.equal(deployment.spec.strategy.rollingUpdate.maxUnavailable, 0, 'a rollout never has fewer ready pods');
  });

  it('probe a port tsgunicorn binds (the app\'s or --metrics-bind\'s); the Service targets the app\'s', () => {
    assert.equal(typeof containerPort, 'number');
    assert.ok(container.readinessProbe && container.livenessProbe, 'readiness and liveness probes');
    const bound = [argValue('--bind'), argValue('--metrics-bind')].filter(Boolean).map((bind) => Number(bind!.split(':').pop()));
    for (const probe of [container.readinessProbe, container.livenessProbe] as Tree[]) {
      const action = (probe.httpGet ?? probe.tcpSocket) as Tree;
      assert.ok(action, 'an httpGet or tcpSocket probe');
      assert.ok(bound.includes(portNumber(action.port)!), `probe port ${action.port} is one of ${bound}`);
    }
    assert.equal(portNumber((service.spec.ports as Tree[])[0].targetPort), containerPort);
    assert.equal(argValue('--bind'), `0.0.0.0:${containerPort}`);
  });

  it('give the pod a grace period above --pre-stop-delay (or a preStop sleep) plus --graceful-timeout', () => {
    const graceful = Number(argValue('--graceful-timeout') ?? 30);
    const preStopDelay = Number(argValue('--pre-stop-delay') ?? 0);
    const preStopSleep = Number((container.lifecycle as Tree | undefined)?.preStop?.sleep?.seconds ?? 0);
    assert.ok(preStopDelay + preStopSleep > 0, 'a delay for the endpoint removal: --pre-stop-delay or a preStop sleep');
    assert.ok(pod.terminationGracePeriodSeconds > graceful + preStopDelay + preStopSleep,
      `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} > ${graceful} + ${preStopDelay + preStopSleep}`);
  });

  it('set CPU and memory requests and limits, which --workers auto follows', () => {
    assert.equal(argValue('--workers'), 'auto');
    for (const kind of ['requests', 'limits']) {
      const resources = container.resources[kind] as Tree;
      assert.ok(resources.cpu !== undefined && resources.memory !== undefined, `${kind}: cpu and memory`);
    }
    assert.match(String(container.resources.limits.cpu), /^\d+(\.\d+)?$|^\d+m$/);
  });

  it('pass args that tsgunicorn accepts', { skip: !hasPreStopDelay && '--pre-stop-delay is not a setting on this branch yet (the roll helper adds it)' }, async () => {
    const dir = tempDir();
    try {
      const settings = await resolveSettings({ argv: args, env: {}, cwd: dir });
      assert.equal(settings.workers, 'auto');
      assert.equal(settings.app, 'app.ts');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('run the image deploy/Dockerfile builds: tsgunicorn itself as PID 1, exposing the container port', () => {
    const dockerfile = read('Dockerfile');
    assert.match(dockerfile, /^FROM node:\S+/m);
    assert.match(dockerfile, /^ENTRYPOINT \["node_modules\/\.bin\/tsgunicorn"\]$/m);
    assert.equal(Number(/^EXPOSE (\d+)$/m.exec(dockerfile)?.[1]), containerPort);
  });
});

describe('test/yaml-subset.ts', () => {
  const parse = (text: string): YamlValue[] => parseYamlDocuments(text);
  it('reads mappings, sequences at or below their key, item mappings, scalars and documents', () => {
    assert.deepEqual(parse('a: 1\nb:\n- x\n- "y # not a comment"\nc:\n  - k: v\n    n: 2.5\n  - \'it\'\'s\'\n---\nd: true # c\ne:\n'),
      [{ a: 1, b: ['x', 'y # not a comment'], c: [{ k: 'v', n: 2.5 }, "it's"] }, { d: true, e: null }]);
  });

  it('refuses what it does not read as Kubernetes would', () => {
    for (const text of ['a: {b: 1}', 'a: [1, 2]', 'a: |\n  text', 'a: &x 1', 'a: !!str 1', 'a:\tb', 'a: 1\na: 2', 'a:\n  b: 1\n c: 2', 'a: b: c']) {
      assert.throws(() => parse(text), /YAML/, text);
    }
  });
});
