/**
 * Users and groups by name or id, read from /etc/passwd and /etc/group (no native module: `os.userInfo()` only
 * knows the current user). Names from other NSS sources (LDAP, systemd's dynamic users) are not seen; a numeric
 * id always works.
 */
import fs from 'node:fs';
import { ConfigError } from './errors.ts';

/** A user: its id, and where /etc/passwd knows it, its name and primary group. */
export interface UserEntry {
  uid: number;
  name?: string;
  gid?: number;
}

/** A group: its id, name, and the users /etc/group lists as its members. */
export interface GroupEntry {
  gid: number;
  name?: string;
  members: string[];
}

/** The text of the user and group databases (the files by default; tests pass their own). */
export interface AccountFiles {
  passwd: string;
  group: string;
}

function readOrEmpty(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** /etc/passwd and /etc/group as they are now (empty where unreadable). */
export function systemAccountFiles(): AccountFiles {
  return { passwd: readOrEmpty('/etc/passwd'), group: readOrEmpty('/etc/group') };
}

/** The colon-separated records of a passwd/group file, comments and blank lines skipped. */
function records(text: string): string[][] {
  return text.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('#')).map((line) => line.split(':'));
}

/** Parses /etc/passwd (`name:x:uid:gid:gecos:home:shell`). */
export function parsePasswd(text: string): Required<UserEntry>[] {
  return records(text).filter((fields) => fields.length >= 4)
    .map(([name, , uid, gid]) => ({ name, uid: Number(uid), gid: Number(gid) }));
}

/** Parses /etc/group (`name:x:gid:member,member`). */
export function parseGroups(text: string): GroupEntry[] {
  return records(text).filter((fields) => fields.length >= 3)
    .map(([name, , gid, members = '']) => ({ name, gid: Number(gid), members: members.split(',').filter(Boolean) }));
}

const NUMERIC_ID = /^\d+$/;

/** A user by name or numeric id (a numeric id need not be in /etc/passwd); a ConfigError naming an unknown one. */
export function lookupUser(value: string, files: AccountFiles = systemAccountFiles()): UserEntry {
  const users = parsePasswd(files.passwd);
  if (NUMERIC_ID.test(value)) return users.find((user) => user.uid === Number(value)) ?? { uid: Number(value) };
  const user = users.find((entry) => entry.name === value);
  if (!user) throw new ConfigError(`invalid value "${value}" for -u/--user (user): no such user in /etc/passwd`);
  return user;
}

/** A group by name or numeric id (a numeric id need not be in /etc/group); a ConfigError naming an unknown one. */
export function lookupGroup(value: string, files: AccountFiles = systemAccountFiles()): GroupEntry {
  const groups = parseGroups(files.group);
  if (NUMERIC_ID.test(value)) return groups.find((group) => group.gid === Number(value)) ?? { gid: Number(value), members: [] };
  const group = groups.find((entry) => entry.name === value);
  if (!group) throw new ConfigError(`invalid value "${value}" for -g/--group (group): no such group in /etc/group`);
  return group;
}

/** initgroups(3): `gid` and every group /etc/group lists `userName` as a member of, sorted, without repeats. */
export function memberGroups(userName: string, gid: number, files: AccountFiles = systemAccountFiles()): number[] {
  const listed = parseGroups(files.group).filter((group) => group.members.includes(userName)).map((group) => group.gid);
  return [...new Set([gid, ...listed])].sort((a, b) => a - b);
}
