//! (in progress)
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::error::Error;
use crate::manager::ControllerContext;

pub fn start(_ctx: ControllerContext) -> BoxFuture<'static, Result<(), Error>> {
    async { Ok(()) }.boxed()
}
