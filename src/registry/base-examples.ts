import type { TaskRegistry } from './types.js';

/**
 * Prompts that belong to the base model in almost any registry: greetings, small talk, thanks,
 * questions about the assistant, general coding and arithmetic help, everyday requests. Used for
 * a registry that lists no base examples of its own (LORAUTER_DEFAULT_BASE_EXAMPLES=off turns it off).
 */
export const DEFAULT_BASE_EXAMPLES = [
  'hi',
  'hello there!',
  'hey, how is it going?',
  'good afternoon',
  'morning! how are you?',
  'thanks so much for your help',
  'thank you, bye',
  'goodbye and have a nice day',
  'see ya',
  'who made you?',
  'what are you able to help me with?',
  'are you an AI?',
  'tell me a funny story',
  'I feel lonely tonight, can we talk?',
  'what is your opinion on pineapple pizza?',
  "what's new with you?",
  'sounds good',
  'sure, go ahead',
  'no thanks',
  'can you help me?',
  'I have a question',
  'write a Python script that renames all files in a folder',
  'my JavaScript code throws undefined is not a function, why?',
  'how do I install a package with npm?',
  'what does this error mean: segmentation fault (core dumped)',
  'implement binary search in Java',
  'how do I center a div in CSS?',
  'write a SQL query that finds duplicate emails',
  'explain recursion with a code example',
  'convert this for loop into a list comprehension',
  'what is a memory leak and how do I find one?',
  'how do I undo the last git commit?',
  'debug my function, it returns the wrong value',
  'what is 7 plus 15?',
  'calculate 18 percent of 250',
  'if I save 40 dollars a week, how much do I have after a year?',
  'Maria has 5 pens and loses 2. How many pens does she have left?',
  'solve 3x - 7 = 11',
  'what is the square root of 144?',
  'a car drives 300 miles on 10 gallons; what is its mileage?',
  'how many minutes are in 3.5 hours?',
  'give me a recipe for banana bread',
  'suggest a name for my new bakery',
  'help me plan a birthday party for a 10 year old',
  'write a poem about the moon',
  'what are some tips for a job interview?',
  'how can I sleep better at night?',
  'recommend a movie for a rainy evening',
  'what should I pack for a beach holiday?',
  'write a motivational quote for my team',
  'how do I clean a cast iron pan?',
  'give me ideas for a date night at home',
  'make a weekly meal plan for a vegetarian',
  'how do I stay focused while studying?',
  'write a thank-you note to my teacher',
  'what is the best way to learn guitar as an adult?',
  'asdfgh jkl',
  'qwerty uiop zxcv',
  'lorem ipsum dolor sit amet',
];

/** The registry with the default base examples when it lists none and the defaults are on. */
export function withDefaultBaseExamples(registry: TaskRegistry, enabled: boolean): TaskRegistry {
  if ((registry.baseExamples?.length ?? 0) > 0 || !enabled) return registry;
  return { ...registry, baseExamples: DEFAULT_BASE_EXAMPLES };
}

/**
 * What a fitted encoder (the built-in one) is fitted on: the tasks' examples, and the base examples
 * as one more group, so that the encoder's space has a direction for them too.
 */
export function exampleGroups(tasks: readonly { examples: readonly string[] }[], baseExamples: readonly string[] = []): { examples: readonly string[] }[] {
  return baseExamples.length > 0 ? [...tasks, { examples: baseExamples }] : [...tasks];
}
