/**
 * Pages: Eta templates from `interactions/views`, texts from `interactions/texts`. German is
 * the language of the product; English is offered when the client or browser asks for it,
 * and any text missing in English falls back to German.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { Eta } from 'eta';
import type { Context } from 'koa';

const interactionsDir = fileURLToPath(new URL('../../interactions/', import.meta.url));

export type Language = 'de' | 'en';
type Texts = Record<string, string>;

const texts: Record<Language, Texts> = {
  de: JSON.parse(readFileSync(`${interactionsDir}texts/de.json`, 'utf8')) as Texts,
  en: JSON.parse(readFileSync(`${interactionsDir}texts/en.json`, 'utf8')) as Texts,
};

export type Translate = (key: string, params?: Record<string, string | number>) => string;

/** A translation function for `language`; unknown keys are shown as the key itself. */
export function translator(language: Language): Translate {
  return (key, params = {}) => {
    const template = texts[language][key] ?? texts.de[key] ?? key;
    return template.replace(/\{(\w+)\}/g, (match, name: string) => String(params[name] ?? match));
  };
}

/** True when a text exists for `key` (used to fall back from precise to generic codes). */
export const hasText = (key: string) => key in texts.de;

/**
 * The page language: `ui_locales` of the authorization request first (OIDC Core 3.1.2.1),
 * then the browser's Accept-Language, else German.
 */
export function pageLanguage(ctx: Context, uiLocales?: unknown): Language {
  if (typeof uiLocales === 'string') {
    for (const tag of uiLocales.split(' ')) {
      const primary = tag.toLowerCase().split('-')[0];
      if (primary === 'de' || primary === 'en') return primary;
    }
  }
  const accepted = ctx.acceptsLanguages('de', 'en');
  return accepted === 'en' ? 'en' : 'de';
}

/** Dates and times as the page language writes them, in German time; '–' for none. */
export function dateFormatter(language: Language) {
  const locale = language === 'en' ? 'en-GB' : 'de-DE';
  const dateTime = new Intl.DateTimeFormat(locale, {
    dateStyle: 'medium',
    timeStyle: 'short',
    timeZone: 'Europe/Berlin',
  });
  const date = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeZone: 'Europe/Berlin' });
  return {
    dateTime: (value: Date | null | undefined) => (value ? dateTime.format(value) : '–'),
    date: (value: Date | null | undefined) => (value ? date.format(value) : '–'),
  };
}

export interface PageContext {
  support: { email: string; phone: string };
}

export class Views {
  readonly #eta = new Eta({ views: `${interactionsDir}views`, cache: true, autoEscape: true });
  readonly #page: PageContext;

  constructor(page: PageContext) {
    this.#page = page;
  }

  /** Renders `template` as the response body, with the texts of the page language. */
  render(
    ctx: Context,
    template: string,
    data: Record<string, unknown> = {},
    language = pageLanguage(ctx),
  ): void {
    ctx.type = 'html';
    ctx.set('Cache-Control', 'no-store');
    ctx.body = this.page(template, data, language, ctx.state.cspNonce as string | undefined);
  }

  /** The HTML of `template`, for answers written outside Koa (a malformed request). */
  page(
    template: string,
    data: Record<string, unknown>,
    language: Language,
    cspNonce?: string,
  ): string {
    return this.#eta.render(template, {
      ...data,
      lang: language,
      t: translator(language),
      support: this.#page.support,
      cspNonce,
    });
  }
}
