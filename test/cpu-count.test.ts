// `--workers auto`: the CPU count read from fake /proc and cgroup files (unit), the workers setting's `auto`
// keyword, and one run with `-w auto` that logs the number and why (node inherit: the count does not depend on
// the runtime).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resolveSettings } from '../src/config.ts';
import { affinityFromStatus, allowedCpus, cgroupQuota, countCpuList, quotaFromCfs, quotaFromCpuMax } from '../src/cpu-count.ts';
import { ConfigError } from '../src/errors.ts';
import { fixture, ROOT, Server, TEST_TARGETS, withRunningServer } from './helpers.ts';

/** A reader over fake files: a missing name reads as undefined, as a missing file does. */
const files = (contents: Record<string, string>) => (file: string) => contents[file];

const STATUS = 'Name:\tnode\nCpus_allowed:\tff\nCpus_allowed_list:\t0-3,6\nMems_allowed_list:\t0\n';
const V2 = { '/proc/self/cgroup': '0::/kubepods/pod1/ctr\n', '/sys/fs/cgroup/cgroup.controllers': 'cpu memory\n' };

describe('--workers auto: parsing', () => {
  it('counts CPU lists and reads the affinity line of /proc/self/status', () => {
    assert.equal(countCpuList('0'), 1);
    assert.equal(countCpuList('0-3,8,10-11\n'), 7);
    assert.equal(countCpuList('3-1'), undefined);
    assert.equal(countCpuList('x'), undefined);
    assert.equal(affinityFromStatus(STATUS), 5);
    assert.equal(affinityFromStatus('Name:\tnode\n'), undefined);
  });

  it('reads cgroup v2 cpu.max and v1 cfs quotas as CPUs', () => {
    assert.equal(quotaFromCpuMax('max 100000\n'), undefined);
    assert.equal(quotaFromCpuMax('150000 100000\n'), 1.5);
    assert.equal(quotaFromCpuMax('50000 100000'), 0.5);
    assert.equal(quotaFromCpuMax('200000'), 2, 'the period defaults to 100000');
    assert.equal(quotaFromCfs('-1\n', '100000\n'), undefined);
    assert.equal(quotaFromCfs('250000\n', '100000\n'), 2.5);
  });

  it('takes the tightest cgroup v2 quota from the process cgroup up to the root', () => {
    const read = files({
      ...V2,
      '/sys/fs/cgroup/kubepods/pod1/ctr/cpu.max': 'max 100000',
      '/sys/fs/cgroup/kubepods/pod1/cpu.max': '150000 100000',
      '/sys/fs/cgroup/kubepods/cpu.max': '400000 100000',
    });
    assert.equal(cgroupQuota(read), 1.5);
    assert.equal(cgroupQuota(files({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cgroup.controllers': '',
      '/sys/fs/cgroup/cpu.max': '300000 100000' })), 3, 'a cgroup namespace shows the container as the root');
    assert.equal(cgroupQuota(files(V2)), undefined, 'no cpu.max anywhere: no quota');
  });

  it('falls back to cgroup v1, at the process path and then the mount root', () => {
    const cgroups = '12:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/\n';
    assert.equal(cgroupQuota(files({ '/proc/self/cgroup': cgroups,
      '/sys/fs/cgroup/cpu/docker/abc/cpu.cfs_quota_us': '50000', '/sys/fs/cgroup/cpu/docker/abc/cpu.cfs_period_us': '100000' })), 0.5);
    assert.equal(cgroupQuota(files({ '/proc/self/cgroup': cgroups,
      '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '200000', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000' })), 2);
    assert.equal(cgroupQuota(files({ '/proc/self/cgroup': cgroups,
      '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000' })), undefined);
  });

  it('is min(affinity, ceil(quota)), at least 1, with the reason it logs', () => {
    const limited = files({ '/proc/self/status': STATUS, ...V2, '/sys/fs/cgroup/kubepods/pod1/ctr/cpu.max': '150000 100000' });
    assert.deepEqual(allowedCpus(limited, 64), { count: 2, reason: 'auto: 5 CPUs allowed, cgroup quota 1.5' });
    const tiny = files({ '/proc/self/status': STATUS, ...V2, '/sys/fs/cgroup/cpu.max': '10000 100000' });
    assert.equal(allowedCpus(tiny, 64).count, 1);
    const unlimited = files({ '/proc/self/status': 'Cpus_allowed_list:\t0\n', ...V2 });
    assert.deepEqual(allowedCpus(unlimited, 64), { count: 1, reason: 'auto: 1 CPU allowed, no cgroup CPU quota' });
    assert.equal(allowedCpus(files({}), 3).count, 3, 'without /proc: os.availableParallelism()');
  });
});

describe('--workers auto: the setting', () => {
  it('accepts auto from the command line and WEB_CONCURRENCY, and names the value it refuses', async () => {
    assert.equal((await resolveSettings({ argv: ['-w', 'auto'], env: {}, cwd: ROOT })).workers, 'auto');
    assert.equal((await resolveSettings({ argv: [], env: { WEB_CONCURRENCY: 'auto' }, cwd: ROOT })).workers, 'auto');
    assert.equal((await resolveSettings({ argv: ['-w', '3'], env: {}, cwd: ROOT })).workers, 3);
    await assert.rejects(resolveSettings({ argv: ['-w', 'many'], env: {}, cwd: ROOT }),
      (error: Error) => error instanceof ConfigError && /"many" for -w\/--workers.*an integer >= 1 or auto/.test(error.message));
  });

  const target = TEST_TARGETS.find((t) => t.runtime === 'node') ?? TEST_TARGETS[0];
  it(`${target.name}: -w auto starts the allowed number of workers and logs why`, async () => {
    const { count, reason } = allowedCpus();
    await withRunningServer(Server.start(target, ['-b', '127.0.0.1:0', '-w', 'auto', fixture('app.ts')], { workers: count }), async (server) => {
      const [line] = server.matches(/Using (\d+) workers? \((auto: .*)\)$/);
      assert.ok(line, 'the master logs the number of workers');
      assert.equal(Number(line[1]), count);
      assert.equal(line[2], reason);
    });
  });
});
