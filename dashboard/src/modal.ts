import { h } from './dom.js';

/**
 * Asks the operator to confirm a destructive action in a dialog of the page; resolves true
 * when they press the action's button, false on Cancel.
 */
export function confirmAction(question: string, action: string): Promise<boolean> {
  const root = document.getElementById('modal-root') as HTMLElement;
  return new Promise((resolve) => {
    const close = (answer: boolean): void => {
      root.replaceChildren();
      resolve(answer);
    };
    root.replaceChildren(
      h(
        'div',
        { class: 'backdrop' },
        h(
          'div',
          { class: 'modal', role: 'dialog', 'aria-modal': 'true', 'data-testid': 'confirm-dialog' },
          h('p', {}, question),
          h(
            'div',
            { class: 'actions' },
            h('button', { type: 'button', onclick: () => close(false) }, 'Cancel'),
            h(
              'button',
              {
                type: 'button',
                class: 'danger',
                'data-testid': 'confirm',
                onclick: () => close(true),
              },
              action,
            ),
          ),
        ),
      ),
    );
  });
}
