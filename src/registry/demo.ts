import type { TaskRegistry } from './types.js';

const task = (id: string, domain: string, description: string, examples: string[]) => ({
  id,
  domain,
  description,
  examples,
  adapterScores: {},
});

/** A small built-in registry so that the gateway answers routes with no task file configured. */
export function demoRegistry(): TaskRegistry {
  const tasks = [
    task('sentiment', 'sentiment', 'Classify the sentiment of a review or sentence', [
      'What is the sentiment of the following movie review sentence? a wild, endearing, masterful documentary',
      'Is the sentiment of the following sentence positive or negative? quiet, introspective and entertaining',
      'Did the reviewer like the product? Review: it broke after two days and support never answered',
      'Rate the sentiment of this tweet: I cannot believe how great the concert was tonight!',
      'Does the following review have a positive or negative opinion of the movie? the film is a mess',
    ]),
    task('translate_de_en', 'translation', 'Translate German text into English', [
      'Translate to English: Die Katze sitzt auf dem Tisch und schläft.',
      'Übersetze ins Englische: Ich habe heute keine Zeit, weil ich arbeiten muss.',
      'Translate the following sentence from German to English: Wir treffen uns morgen am Bahnhof.',
      'How do you say this in English? Das Wetter ist heute sehr schön.',
      'German: Der Bericht wurde vom Ausschuss angenommen. English:',
    ]),
    task('summarization', 'summarization', 'Summarise a news article or document', [
      'Summarize this article: The city council voted on Tuesday to expand the bike lane network across downtown...',
      'Write a short summary of the following text: Researchers have found that regular exercise improves memory...',
      'What is a one-sentence summary of this news story? Heavy rain caused flooding in several villages...',
      'TL;DR of the following report: quarterly revenue rose 12% while operating costs remained flat...',
      'Give me the highlights of this article: The championship final ended in a dramatic penalty shootout...',
    ]),
    task('closed_book_qa', 'closed_book_qa', 'Answer a factual question without context', [
      'What is the capital of Australia?',
      'Who wrote the novel Pride and Prejudice?',
      'Answer this question: how many bones are in the adult human body?',
      'When did the first man land on the moon?',
      'Which element has the chemical symbol Fe?',
    ]),
    task('nli', 'nli', 'Decide whether a premise entails a hypothesis', [
      'Premise: A man is playing a guitar on stage. Hypothesis: A person is performing music. Does the premise entail the hypothesis? OPTIONS: - yes - it is not possible to tell - no',
      'Can we draw the following conclusion? Sentence: The dog runs through the snow. Conclusion: The animal is outside.',
      'If "two women are sitting at a cafe", does it follow that "the women are standing"? OPTIONS: - yes - no - it is not possible to tell',
      'Read the text and determine if the sentence is true: The museum opened in 1901. Sentence: The museum is over a century old.',
      'Premise: Children play in the park. Hypothesis: The kids are at school. Is the hypothesis entailed by the premise?',
    ]),
    task('code', 'code', 'Write or explain source code', [
      'Write a Python function that returns the n-th Fibonacci number.',
      'Explain what this JavaScript code does: const xs = arr.filter(x => x > 0).map(x => x * 2);',
      'Fix the bug in this SQL query: SELECT name FROM users WHERE age > 30 GROUP name;',
      'How do I reverse a linked list in C++?',
      'Write a bash script that counts the lines of every .ts file in a folder.',
    ]),
  ];
  return { tasks, adapters: new Map(tasks.map((t) => [t.id, { id: t.id }])), source: 'built-in demo registry' };
}
