/**
 * Running the workers as another user (Gunicorn's --user, --group, --initgroups, --umask): the master (root, so
 * that it can bind port 80) works out the identity the workers drop to, hands them the files they write (unix
 * sockets, log files), and binds unix sockets under the umask. Each worker drops at boot, before it loads the app.
 */
import fs from 'node:fs';
import { parseBind } from './address.ts';
import { ConfigError } from './errors.ts';
import { type AccountFiles, lookupGroup, lookupUser, memberGroups, systemAccountFiles } from './passwd.ts';
import type { ProcessIdentity } from './runtime/index.ts';
import type { Settings } from './settings.ts';

/** This process's effective user, group and supplementary groups, from /proc/self/status (Linux). */
export function currentIdentity(status = fs.readFileSync('/proc/self/status', 'utf8')): ProcessIdentity {
  const ids = (field: string) => (new RegExp(`^${field}:(.*)$`, 'm').exec(status)?.[1] ?? '').trim().split(/\s+/)
    .filter(Boolean).map(Number);
  // Uid: and Gid: list the real, effective, saved and filesystem ids.
  return { uid: ids('Uid')[1], gid: ids('Gid')[1], groups: ids('Groups') };
}

function sameGroups(a: number[], b: number[]): boolean {
  const sorted = [...b].sort();
  return a.length === b.length && [...a].sort().every((id, i) => id === sorted[i]);
}

/**
 * The identity the workers drop to, or undefined when --user and --group are unset or ask for what the master
 * already is. The group is --group, else the user's primary group (Gunicorn keeps the master's, which would run
 * `--user nobody` as group root), else the master's; the supplementary groups are the group alone, or with
 * --initgroups every group /etc/group lists the user in. A ConfigError when only root could switch to it.
 */
export function workerIdentity(
  settings: Pick<Settings, 'user' | 'group' | 'initgroups'>,
  files: AccountFiles = systemAccountFiles(),
  current: ProcessIdentity = currentIdentity(),
): ProcessIdentity | undefined {
  if (settings.user === null && settings.group === null) return undefined;
  const user = lookupUser(settings.user ?? String(current.uid), files);
  const gid = settings.group !== null ? lookupGroup(settings.group, files).gid : user.gid ?? current.gid;
  const groups = settings.initgroups && user.name !== undefined ? memberGroups(user.name, gid, files) : [gid];
  const identity = { uid: user.uid, gid, groups };
  if (identity.uid === current.uid && gid === current.gid && sameGroups(groups, current.groups)) return undefined;
  if (current.uid !== 0) {
    throw new ConfigError(`--user/--group: only a master running as root can run its workers as uid ${identity.uid} ` +
      `gid ${gid} groups ${groups.join(',')} (this one runs as uid ${current.uid})`);
  }
  return identity;
}

/** A one-line description for the log: `uid 65534 gid 65534 groups 65534`. */
export function describeIdentity(identity: ProcessIdentity): string {
  return `uid ${identity.uid} gid ${identity.gid} groups ${identity.groups.join(',')}`;
}

/** Gives the workers' user and group the files the master created for them (unix sockets, log files). */
export function handOver(paths: string[], identity: ProcessIdentity): void {
  for (const file of paths) fs.chownSync(file, identity.uid, identity.gid);
}

/**
 * The TCP ports among `binds` that only root may bind (below net.ipv4.ip_unprivileged_port_start, 1024 where it
 * cannot be read): a worker that runs as --user cannot open its own reuse-port socket on them.
 */
export function privilegedPorts(binds: string[], sysctl = '/proc/sys/net/ipv4/ip_unprivileged_port_start'): number[] {
  let start = 1024;
  try {
    start = Number(fs.readFileSync(sysctl, 'utf8').trim()) || start;
  } catch {
    // not Linux, or no /proc: the traditional limit
  }
  return binds.map(parseBind).flatMap((address) => (address.kind === 'tcp' && address.port > 0 && address.port < start
    ? [address.port] : []));
}

/** Runs `bind` with the process umask set to `mask`, then restores the previous one (Gunicorn's unix-socket bind). */
export async function withUmask<T>(mask: number, bind: () => Promise<T>): Promise<T> {
  const previous = process.umask(mask);
  try {
    return await bind();
  } finally {
    process.umask(previous);
  }
}
