/**
 * Prompts that belong to no LoRA task of a typical registry: greetings and small talk, coding
 * questions, math word problems, everyday requests, random strings. `lorauter eval` measures how
 * many of them abstain. Built from hand-written pieces, deterministic (no randomness at run time).
 */

const GREETINGS = [
  'hi', 'hello', 'hey', 'hey there', 'good morning', 'good evening', 'yo', 'hiya', 'greetings', 'howdy',
  'hello!', 'hi, how are you?', "what's up?", 'how are you doing today?', 'nice to meet you',
  'thanks!', 'thank you very much', 'thanks a lot, that helped', 'bye', 'see you tomorrow', 'good night',
  'ok cool', 'great, thanks', 'lol', 'haha that is funny', 'who are you?', 'what is your name?',
  'are you a robot?', 'can you hear me?', 'test', 'testing 1 2 3', 'ping', 'are you there?',
];

const SMALL_TALK = [
  "I'm feeling a bit tired today", 'I had a great weekend with my family', 'do you like music?',
  'what is your favourite colour?', 'tell me a joke', 'tell me something interesting', "I'm bored",
  'can we chat for a while?', 'what do you think about cats?', 'do you dream?', 'I just got a new puppy!',
  'my coffee is cold again', 'what a rainy day', 'happy birthday to me', 'I passed my driving test',
];

const LANGUAGES = ['Python', 'JavaScript', 'TypeScript', 'Rust', 'Go', 'Java', 'C++', 'C#', 'Ruby', 'Kotlin'];
const CODING_TASKS = [
  'How do I reverse a linked list in {lang}?',
  'Write a {lang} function that checks whether a number is prime.',
  'Why does my {lang} program throw a null pointer exception here?',
  'What is the difference between a list and a tuple in {lang}?',
  'How can I read a CSV file in {lang}?',
  'Explain closures in {lang} with an example.',
  'Refactor this {lang} loop to use map and filter.',
  'How do I make an HTTP request in {lang}?',
  'Write unit tests in {lang} for a function that sorts an array.',
  'How do I parse JSON in {lang}?',
];

const NAMES = ['Anna', 'Ben', 'Carla', 'Deepak', 'Elif', 'Farid', 'Grace', 'Hiro', 'Ines', 'Jonas'];
const THINGS = ['apples', 'pencils', 'marbles', 'stickers', 'cookies', 'books', 'coins', 'cards'];
const MATH_TEMPLATES = [
  '{name} has {a} {thing} and buys {b} more. How many {thing} does {name} have now?',
  '{name} had {a} {thing} and gave {b} to a friend. How many are left?',
  'A box holds {b} {thing}. How many boxes does {name} need for {a} {thing}?',
  'If {name} reads {b} pages a day, how many days to read a {a}-page book?',
  'A train travels {a} km in {b} hours. What is its average speed?',
  'What is {b} percent of {a}?',
];

const EVERYDAY = [
  'What should I cook for dinner with chicken and rice?', 'Plan a weekend trip to Rome for two people.',
  'Give me a workout plan for beginners.', 'How do I get red wine out of a carpet?',
  'Recommend a good sci-fi book.', 'What are some gift ideas for my dad?', 'How do I change a flat tyre?',
  'Write a haiku about autumn leaves.', 'Help me write a cover letter for a barista job.',
  'What is a good name for a golden retriever?', 'How many hours of sleep do adults need?',
  'Suggest a playlist for a road trip.', 'How do I start a vegetable garden on a balcony?',
  'Draft an email asking my landlord to fix the heating.', 'What are the rules of chess castling?',
  'Write a limerick about a cat who loves cheese.', 'How do I meditate?', 'Create a packing list for a ski holiday.',
  'Help me budget a monthly salary of 3000 euros.', 'What board games are fun for four players?',
];

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz';

/** Strings of letters with no meaning, from a fixed seed. */
function randomStrings(count: number): string[] {
  let state = 0x2545f491;
  const next = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  return Array.from({ length: count }, () => {
    const words = 1 + Math.floor(next() * 4);
    return Array.from({ length: words }, () => Array.from({ length: 3 + Math.floor(next() * 8) }, () => ALPHABET[Math.floor(next() * 26)]).join('')).join(' ');
  });
}

export function offTopicPrompts(): string[] {
  const coding = LANGUAGES.flatMap((lang) => CODING_TASKS.map((template) => template.replaceAll('{lang}', lang)));
  const math = NAMES.flatMap((name, i) =>
    MATH_TEMPLATES.filter((_, j) => (i + j) % 3 !== 0).map((template) =>
      template
        .replaceAll('{name}', name)
        .replaceAll('{thing}', THINGS[(i * 3) % THINGS.length])
        .replaceAll('{a}', String(12 + i * 7))
        .replaceAll('{b}', String(3 + i)),
    ),
  );
  return [...GREETINGS, ...SMALL_TALK, ...coding, ...math, ...EVERYDAY, ...randomStrings(80)];
}
