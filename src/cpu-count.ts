/**
 * `--workers auto`: the number of CPUs this process may use, which in a container is neither the host's core
 * count nor `os.cpus().length`: the smaller of its CPU affinity (sched_getaffinity, e.g. `docker --cpuset-cpus`)
 * and its cgroup CPU quota (`docker --cpus`, a Kubernetes CPU limit), rounded up, at least 1.
 */
import fs from 'node:fs';
import os from 'node:os';

/** Reads a file's text, or undefined where it does not exist or cannot be read. */
export type TextReader = (file: string) => string | undefined;

/** How many CPUs `--workers auto` found, and the reason as the log line gives it. */
export interface CpuAllowance {
  count: number;
  reason: string;
}

const CGROUP_ROOT = '/sys/fs/cgroup';

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** Counts the CPUs of a kernel CPU list (`0-3,8,10-11` → 7); undefined when it is not one. */
export function countCpuList(list: string): number | undefined {
  let count = 0;
  for (const range of list.trim().split(',')) {
    const match = /^(\d+)(?:-(\d+))?$/.exec(range);
    if (!match) return undefined;
    const first = Number(match[1]), last = Number(match[2] ?? match[1]);
    if (last < first) return undefined;
    count += last - first + 1;
  }
  return count;
}

/** The CPU affinity count from /proc/self/status's `Cpus_allowed_list:` line; undefined without one. */
export function affinityFromStatus(status: string): number | undefined {
  const line = /^Cpus_allowed_list:\s*(\S+)\s*$/m.exec(status);
  return line ? countCpuList(line[1]) : undefined;
}

/** A cgroup v2 `cpu.max` (`QUOTA PERIOD`) as CPUs (`150000 100000` → 1.5); undefined for `max` (no quota). */
export function quotaFromCpuMax(cpuMax: string): number | undefined {
  const [quota, period = '100000'] = cpuMax.trim().split(/\s+/);
  return quotaOf(quota, period);
}

/** A cgroup v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us` as CPUs; undefined for a quota of -1 (none). */
export function quotaFromCfs(quotaUs: string, periodUs: string): number | undefined {
  return quotaOf(quotaUs.trim(), periodUs.trim());
}

function quotaOf(quota: string, period: string): number | undefined {
  const q = Number(quota), p = Number(period);
  return /^\d+$/.test(quota) && Number.isFinite(p) && p > 0 && q > 0 ? q / p : undefined;
}

/**
 * The tightest cgroup CPU quota over this process's cgroup and its ancestors: cgroup v2 (`cpu.max` from the
 * `0::PATH` line of /proc/self/cgroup up to the root), else cgroup v1's `cpu` controller (its path, then the
 * mount's root, which is the container's own cgroup when the path is the host's).
 */
export function cgroupQuota(read: TextReader): number | undefined {
  const cgroups = read('/proc/self/cgroup') ?? '';
  const unified = /^0::(\S*)$/m.exec(cgroups);
  if (unified && read(`${CGROUP_ROOT}/cgroup.controllers`) !== undefined) {
    let smallest: number | undefined;
    for (let dir = unified[1].replace(/\/+$/, ''); ; dir = dir.slice(0, dir.lastIndexOf('/'))) {
      const cpuMax = read(`${CGROUP_ROOT}${dir}/cpu.max`);
      const quota = cpuMax === undefined ? undefined : quotaFromCpuMax(cpuMax);
      if (quota !== undefined) smallest = Math.min(smallest ?? quota, quota);
      if (dir === '') return smallest;
    }
  }
  const v1 = /^\d+:(?:[^:]*,)?cpu(?:,[^:]*)?:(\S*)$/m.exec(cgroups);
  for (const dir of v1 ? [`${CGROUP_ROOT}/cpu${v1[1].replace(/\/+$/, '')}`, `${CGROUP_ROOT}/cpu`] : []) {
    const quota = read(`${dir}/cpu.cfs_quota_us`), period = read(`${dir}/cpu.cfs_period_us`);
    if (quota !== undefined && period !== undefined) return quotaFromCfs(quota, period);
  }
  return undefined;
}

/**
 * The CPUs this process may use: min(affinity, ceil(cgroup quota)), at least 1. `availableParallelism` is
 * os.availableParallelism() (sched_getaffinity itself) where the runtime has it, the fallback for affinity where
 * /proc cannot be read.
 */
export function allowedCpus(
  read: TextReader = readText,
  availableParallelism: number | undefined = os.availableParallelism?.(),
): CpuAllowance {
  const affinity = affinityFromStatus(read('/proc/self/status') ?? '') ?? availableParallelism ?? os.cpus().length;
  const quota = cgroupQuota(read);
  const count = Math.max(1, Math.min(affinity, quota === undefined ? affinity : Math.ceil(quota)));
  const quotaText = quota === undefined ? 'no cgroup CPU quota' : `cgroup quota ${Number(quota.toFixed(2))}`;
  return { count, reason: `auto: ${affinity} CPU${affinity === 1 ? '' : 's'} allowed, ${quotaText}` };
}
