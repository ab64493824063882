/** What the composition bench and its gateway child share: the task file, how many tasks, the examples they are fitted on. */
export const FLAN = new URL('../test/fixtures/flan-tasks.jsonl', import.meta.url).pathname;
export const FIT_EXAMPLES = 10;
export const TASKS = 48;
