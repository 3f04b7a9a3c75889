/**
 * Preloaded into a server started by server-process.ts (`node --expose-gc --import …`): it
 * answers the test's questions about the process's memory over the IPC channel, after a full
 * garbage collection when asked, so that a test can compare what stays allocated.
 */
interface Question {
  id: number;
  collect: boolean;
}

process.on('message', (question: Question) => {
  // Twice: objects kept only by finalizers and weak references go in the second round.
  if (question.collect) for (let round = 0; round < 2; round += 1) globalThis.gc?.();
  const { rss, heapUsed } = process.memoryUsage();
  process.send?.({ id: question.id, rss, heapUsed });
});
// The channel must not keep the server running once it has closed everything on SIGTERM.
process.channel?.unref();
