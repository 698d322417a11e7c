-- Products: a plan may belong to one product, and a customer's account may be for one; a
-- subscription never mixes them. A paid plan needs a card on file.

alter table plans add column product text;
comment on column plans.product is 'The product the plan is for; null: any product.';

alter table customers add column product text;
comment on column customers.product is 'The product the account is for; null: any product.';
