// --user, --group, --initgroups, --umask: the account files and the identity the workers drop to (unit), a bad
// name as one CLI line, and, as root, workers of every target running as nobody/nogroup (their /proc status),
// serving on TCP and on a unix socket the master bound under the umask and handed to them, with their log file.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { coerceSetting } from '../src/config.ts';
import { ConfigError } from '../src/errors.ts';
import { lookupGroup, lookupUser, memberGroups, parseGroups, parsePasswd, systemAccountFiles } from '../src/passwd.ts';
import { currentIdentity, privilegedPorts, workerIdentity } from '../src/privileges.ts';
import { settingByName } from '../src/settings.ts';
import { describeEachTarget, fetchText, fixture, runCli, Server, sleep, tempDir, TEST_TARGETS, withRunningServer } from './helpers.ts';

const FILES = {
  passwd: '# comment\nroot:x:0:0:root:/root:/bin/bash\nwww:x:33:33:www:/var/www:/usr/sbin/nologin\n' +
    'app:x:1000:1000::/home/app:/bin/sh\n\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n',
  group: 'root:x:0:\nwww:x:33:\ndocker:x:998:app,www\nstaff:x:50:app\napp:x:1000:\nnogroup:x:65534:\n',
};
const ROOT_IDENTITY = { uid: 0, gid: 0, groups: [0] };
const NO_CHANGE = { user: null, group: null, initgroups: false };

describe('privileges: accounts and identities', () => {
  it('parses /etc/passwd and /etc/group', () => {
    assert.deepEqual(parsePasswd(FILES.passwd)[1], { name: 'www', uid: 33, gid: 33 });
    assert.deepEqual(parseGroups(FILES.group)[2], { name: 'docker', gid: 998, members: ['app', 'www'] });
  });

  it('looks users and groups up by name or id; an unknown name is a ConfigError naming it', () => {
    assert.deepEqual(lookupUser('app', FILES), { name: 'app', uid: 1000, gid: 1000 });
    assert.deepEqual(lookupUser('33', FILES), { name: 'www', uid: 33, gid: 33 });
    assert.deepEqual(lookupUser('4242', FILES), { uid: 4242 }, 'a numeric id need not be in /etc/passwd');
    assert.equal(lookupGroup('docker', FILES).gid, 998);
    assert.equal(lookupGroup('4242', FILES).gid, 4242);
    assert.throws(() => lookupUser('mallory', FILES), (error: Error) => error instanceof ConfigError &&
      error.message === 'invalid value "mallory" for -u/--user (user): no such user in /etc/passwd');
    assert.throws(() => lookupGroup('wheel', FILES), /invalid value "wheel" for -g\/--group \(group\): no such group/);
  });

  it('gives the workers the group alone, or with --initgroups every group that lists the user', () => {
    assert.deepEqual(memberGroups('app', 1000, FILES), [50, 998, 1000]);
    assert.equal(workerIdentity(NO_CHANGE, FILES, ROOT_IDENTITY), undefined, 'no --user/--group: no change');
    assert.deepEqual(workerIdentity({ ...NO_CHANGE, user: 'app' }, FILES, ROOT_IDENTITY), { uid: 1000, gid: 1000, groups: [1000] });
    assert.deepEqual(workerIdentity({ ...NO_CHANGE, user: 'app', initgroups: true }, FILES, ROOT_IDENTITY),
      { uid: 1000, gid: 1000, groups: [50, 998, 1000] });
    assert.deepEqual(workerIdentity({ ...NO_CHANGE, user: 'www', group: 'docker' }, FILES, ROOT_IDENTITY),
      { uid: 33, gid: 998, groups: [998] });
    assert.deepEqual(workerIdentity({ ...NO_CHANGE, group: 'nogroup' }, FILES, ROOT_IDENTITY),
      { uid: 0, gid: 65534, groups: [65534] }, 'only --group: the master\'s user');
    assert.deepEqual(workerIdentity({ ...NO_CHANGE, user: '4242' }, FILES, ROOT_IDENTITY),
      { uid: 4242, gid: 0, groups: [0] }, 'a uid unknown to /etc/passwd keeps the master\'s group');
  });

  it('asks for nothing when the master already is that identity, and refuses a switch only root can make', () => {
    const app = { uid: 1000, gid: 1000, groups: [1000] };
    assert.equal(workerIdentity({ ...NO_CHANGE, user: 'app' }, FILES, app), undefined);
    assert.throws(() => workerIdentity({ ...NO_CHANGE, user: 'www' }, FILES, app),
      /--user\/--group: only a master running as root can run its workers as uid 33 gid 33 groups 33 \(this one runs as uid 1000\)/);
  });

  it('reads its own identity from /proc/self/status', () => {
    const status = 'Name:\tx\nUid:\t1000\t1001\t1001\t1001\nGid:\t100\t101\t101\t101\nGroups:\t4 24 101 \n';
    assert.deepEqual(currentIdentity(status), { uid: 1001, gid: 101, groups: [4, 24, 101] });
    assert.deepEqual(currentIdentity('Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\n').groups, []);
    assert.equal(currentIdentity().uid, process.getuid!());
  });

  it('reads --umask as Gunicorn does (leading 0 octal, 0o, 0x, decimal) and finds the ports only root binds', () => {
    const umask = settingByName('umask')!;
    for (const [text, value] of [['022', 0o22], ['0o77', 0o77], ['0x12', 0x12], ['18', 18], ['0', 0]] as const) {
      assert.equal(coerceSetting(umask, text, 'test'), value, text);
    }
    assert.equal(coerceSetting(umask, 0o27, 'config file'), 0o27, 'a number from a config file');
    assert.throws(() => coerceSetting(umask, '0o8', 'command line'), /invalid value "0o8" for -m\/--umask/);
    assert.deepEqual(privilegedPorts(['127.0.0.1:80', '127.0.0.1:0', 'unix:/tmp/x.sock', '[::1]:8000'], '/nonexistent'), [80]);
  });
});

describe('privileges: the command line', () => {
  it('a user that does not exist is one error line and exit status 1', async () => {
    const result = await runCli('node', ['-u', 'no-such-user-tsgunicorn', fixture('app.ts')]);
    assert.equal(result.code, 1);
    assert.equal(result.stderr, 'tsgunicorn: error: invalid value "no-such-user-tsgunicorn" for -u/--user (user): ' +
      'no such user in /etc/passwd\n');
  });
});

const accounts = systemAccountFiles();
const hasNobody = parsePasswd(accounts.passwd).some((u) => u.name === 'nobody') &&
  parseGroups(accounts.group).some((g) => g.name === 'nogroup');
const skipAsUser = process.getuid?.() !== 0 ? 'switching users needs root' : !hasNobody ? 'no nobody user or nogroup group' : false;

/** A worker's Uid:, Gid: and Groups: lines (effective ids). */
const idsOf = (pid: number) => currentIdentity(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));

describeEachTarget('privileges', (target) => {
  describe(`${target.name}: --user/--group`, () => {
    it('workers run as nobody/nogroup and serve on TCP and on the unix socket handed to them', { skip: skipAsUser }, async () => {
      const dir = tempDir();
      // The workers open their log file by its path: nobody must be able to reach the directory.
      fs.chmodSync(dir, 0o755);
      const socketPath = path.join(dir, 'app.sock');
      const logFile = path.join(dir, 'error.log');
      const accessLog = path.join(dir, 'access.log');
      const nobody = lookupUser('nobody'), nogroup = lookupGroup('nogroup');
      try {
        const args = ['-b', '127.0.0.1:0', '-b', `unix:${socketPath}`, '-u', 'nobody', '-g', 'nogroup', '-m', '007',
          '--error-logfile', logFile, '--access-logfile', accessLog, fixture('app.ts')];
        await withRunningServer(Server.start(target, args, { logFile }), async (server) => {
          const [worker] = server.liveWorkers();
          assert.deepEqual(idsOf(worker), { uid: nobody.uid, gid: nogroup.gid, groups: [nogroup.gid] });
          assert.equal(idsOf(server.pid).uid, 0, 'the master stays root');
          assert.match((await fetchText(`${server.url}/`)).body, new RegExp(`^pid=${worker} `));
          assert.match((await fetchText('http://localhost/', { socketPath })).body, new RegExp(`^pid=${worker} `));
          const owners = () => [socketPath, logFile, accessLog].map((file) => [fs.statSync(file).uid, fs.statSync(file).gid]);
          assert.deepEqual(owners(), Array(3).fill([nobody.uid, nogroup.gid]));
          assert.equal(fs.statSync(socketPath).mode & 0o777, 0o770, 'bound under --umask 007');
          assert.ok(server.lines.some((line) => line.includes(`Workers run as uid ${nobody.uid} gid ${nogroup.gid}`)));

          // Log rotation: the master (root) creates the files anew on USR1 and hands them over before the worker
          // (nobody) reopens them, so the next access line lands in the new file. (The server's log lines come
          // from the log file: its address and pid are read before it moves.)
          const { url, pid } = server;
          fs.renameSync(accessLog, `${accessLog}.1`);
          fs.renameSync(logFile, `${logFile}.1`);
          process.kill(pid, 'SIGUSR1');
          const rotated = () => fs.existsSync(accessLog) && fs.readFileSync(accessLog, 'utf8').includes('"GET /');
          for (let attempt = 0; attempt < 100 && !rotated(); attempt++) {
            await fetchText(`${url}/`);
            await sleep(50);
          }
          assert.match(fs.readFileSync(accessLog, 'utf8'), /"GET \/ HTTP\/1\.1" 200/);
          assert.deepEqual(owners(), Array(3).fill([nobody.uid, nogroup.gid]));
        });
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});

const reusePortTarget = TEST_TARGETS.find((t) => t.mode === 'reuse-port');
describe('--user with reuse-port', () => {
  it(`${reusePortTarget?.name ?? 'reuse-port'}: a port only root binds is refused in one line (the workers bind it themselves)`,
    { skip: skipAsUser || (!reusePortTarget && 'no reuse-port target') }, async () => {
      const result = await runCli(reusePortTarget!, ['-b', '127.0.0.1:81', '-u', 'nobody', fixture('app.ts')]);
      assert.equal(result.code, 1);
      const errors = (result.stdout + result.stderr).split('\n').filter((line) => line.includes('[ERROR]'));
      assert.equal(errors.length, 1, errors.join('\n'));
      assert.match(errors[0], /--reuse-port: workers running as --user\/--group cannot bind port 81 themselves.*--no-reuse-port/);
    });
});
