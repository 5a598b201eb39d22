// A node:test reporter for scripts/run-tests.mjs: one JSON line per finished test or suite, with what
// the closing line and the skip/todo check need (outcome, skip and todo reasons, file). The TAP summary
// counts a test that called t.skip() or t.todo() and then threw as neither passed nor failed; the events
// say exactly what happened.
export default async function* testEvents(source) {
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { data } = event;
    yield `${JSON.stringify({
      outcome: event.type === 'test:pass' ? 'pass' : 'fail',
      name: data.name,
      nesting: data.nesting,
      file: data.file,
      suite: data.details?.type === 'suite',
      skip: data.skip,
      todo: data.todo,
      failureType: data.details?.error?.failureType,
    })}\n`;
  }
}
