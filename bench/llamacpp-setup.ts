/** What the llama.cpp weight-grid bench and its gateway child share: the tasks whose GGUF adapters the server loads. */
export const GRID_TASKS = ['sst2', 'qnli', 'wmt16_translate_deen', 'e2e_nlg'];
export const GRID_FIT_EXAMPLES = 10;
