/**
 * A worker process: loads the app, serves it on the inherited listening fds, sends heartbeats and counters to
 * the master, obeys its commands and retires gracefully (stop, max-requests, master gone).
 */
import http from 'node:http';
import { AppLoadError, loadApp } from './app.ts';
import { Logger } from './glogging.ts';
import { ConnectionTracker } from './http/connections.ts';
import { createRequestListener } from './http/node-fetch-adapter.ts';
import type { FetchHandler } from './http/types.ts';
import { EXIT, type MasterMessage, WORKER_ENV, type WorkerBoot, type WorkerMessage } from './messages.ts';
import { currentRuntime, type FdListener } from './runtime/index.ts';

/** Reads this process's boot description if it was spawned as a worker. */
export function workerBootFromEnv(env: Record<string, string | undefined> = process.env): WorkerBoot | undefined {
  const text = env[WORKER_ENV];
  return text ? (JSON.parse(text) as WorkerBoot) : undefined;
}

/** Titles both processes use: `tsgunicorn: master [name]`, `tsgunicorn: worker [name]`. */
export function processTitle(role: 'master' | 'worker', procName: string | null, app: string | null): string {
  return `tsgunicorn: ${role} [${procName ?? app ?? 'app'}]`;
}

/** Runs this process as a worker until it is told to stop; `handler` overrides loading `settings.app`. */
export async function runWorker(boot: WorkerBoot, handler?: FetchHandler): Promise<void> {
  const { settings } = boot;
  delete process.env[WORKER_ENV];
  process.env.TSGUNICORN_WORKER_ID = String(boot.id);
  const runtime = await currentRuntime();
  runtime.setProcessTitle(processTitle('worker', settings.procName, settings.app));
  let logger: Logger;
  try {
    logger = new Logger(settings);
  } catch (error) {
    process.stderr.write(`tsgunicorn worker: ${(error as Error).message}\n`);
    process.exit(EXIT.WORKER_BOOT_ERROR);
  }
  logger.info(`Booting worker with pid: ${process.pid}`);

  let requests = 0;
  let startedRequests = 0;
  let stopping = false;
  const listeners: FdListener[] = [];
  const connections = new ConnectionTracker();
  const send = (message: WorkerMessage) => {
    if (process.connected) process.send!(message);
  };
  const exit = (code: number): never => {
    logger.info(`Worker exiting (pid: ${process.pid})`);
    logger.close();
    process.exit(code);
  };
  const stopGracefully = () => {
    if (stopping) return;
    stopping = true;
    send({ type: 'retiring' });
    for (const listener of listeners) listener.close();
    setTimeout(() => exit(EXIT.OK), settings.gracefulTimeout * 1000).unref();
    connections.drain(() => exit(EXIT.OK));
  };

  const heartbeatMs = settings.timeout > 0 ? Math.min(1000, (settings.timeout * 1000) / 4) : 1000;
  setInterval(() => {
    send({ type: 'heartbeat', requests, active: connections.active, rss: process.memoryUsage().rss });
  }, heartbeatMs);

  process.on('message', (message: MasterMessage) => {
    if (message.type === 'stop') {
      if (message.graceful) stopGracefully();
      else exit(EXIT.OK);
    } else if (message.type === 'reopen-logs') {
      logger.reopenFiles();
    } else if (message.type === 'abort') {
      logger.error(`Worker aborted by the master (pid: ${process.pid})`);
      exit(1);
    }
  });
  process.on('disconnect', () => {
    logger.info('Master is gone, shutting down');
    stopGracefully();
  });
  process.on('SIGTERM', stopGracefully);
  process.on('SIGINT', () => exit(EXIT.OK));
  process.on('SIGQUIT', () => exit(EXIT.OK));
  process.on('SIGUSR1', () => logger.reopenFiles());
  process.on('SIGHUP', () => logger.debug('Ignoring SIGHUP in a worker; send HUP to the master'));
  process.on('unhandledRejection', (reason) => logger.exception('Unhandled promise rejection in the app', reason));
  process.on('uncaughtException', (error) => {
    logger.exception('Uncaught exception in the worker; retiring it', error);
    stopGracefully();
  });

  let fetchHandler: FetchHandler;
  try {
    if (handler) {
      fetchHandler = handler;
    } else {
      await runtime.enableTypeScriptImports();
      fetchHandler = await loadApp(settings.app!);
      runtime.releaseTypeScriptCompiler();
    }
  } catch (error) {
    logger.exception('Exception in worker process', error);
    return exit(error instanceof AppLoadError ? EXIT.APP_LOAD_ERROR : EXIT.WORKER_BOOT_ERROR);
  }

  const maxRequests = boot.maxRequests;
  const lastRequest = () => maxRequests > 0 && startedRequests >= maxRequests;
  const listener = createRequestListener(fetchHandler, {
    logger,
    // The response that reaches max-requests already closes its connection, as Gunicorn's does.
    shouldCloseConnection: () => stopping || settings.keepAlive === 0 || lastRequest(),
    onRequestDone(entry) {
      requests++;
      if (logger.accessEnabled) logger.access(entry());
      if (lastRequest() && !stopping) {
        logger.info('Autorestarting worker after current request.');
        stopGracefully();
      }
    },
  });
  try {
    for (const fd of boot.fds) {
      const server = http.createServer();
      connections.track(server);
      server.on('request', (req, res) => {
        startedRequests++;
        listener(req, res);
      });
      server.keepAliveTimeout = Math.max(settings.keepAlive, 0.001) * 1000;
      listeners.push(await runtime.listenOnFd(server, fd, settings.backlog));
    }
  } catch (error) {
    logger.exception('Worker could not listen on the inherited sockets', error);
    return exit(EXIT.WORKER_BOOT_ERROR);
  }
  send({ type: 'ready' });
}
